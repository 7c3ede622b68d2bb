"""Rank 0's claim on each configuration, taken one configuration ahead.

A claim (pipeline.tracking.resume, over pipeline.tracking.claims) waits a settle time, a second
by default, so that a rival sweep claiming at the same moment is seen. Paid before every
configuration, that wait was most of a sweep's set-up time per configuration; ``ClaimAhead``
claims the next configuration in a thread while the current one trains, so the wait passes
unseen. A claimed run carries a heartbeat from the moment it is claimed, so no other sweep
takes it for an orphan while it waits its turn.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from pipeline.tracking.resume import Start, claim_trial
from pipeline.tracking.vocab import UNSTARTED

if TYPE_CHECKING:
    from pipeline.tracking.claims import Heartbeat
    from pipeline.train.contract import RankJob, Trial


class ClaimAhead:
    """Rank 0: claims configurations in threads; ``take`` waits for a claim's outcome."""

    def __init__(self, job: RankJob) -> None:
        self._job = job
        self._pending: dict[str, tuple[threading.Thread, dict]] = {}

    def start(self, trial: Trial) -> None:
        """Begin claiming ``trial`` in the background."""
        box: dict = {}
        thread = threading.Thread(target=self._claim, args=(trial, box), daemon=True,
                                  name=f"claim-{trial.config_hash}")
        thread.start()
        self._pending[trial.config_hash] = (thread, box)

    def take(self, trial: Trial) -> tuple[Start, Heartbeat | None]:
        """The claim's outcome, and the heartbeat already keeping a claimed run alive."""
        if trial.config_hash not in self._pending:
            self.start(trial)
        thread, box = self._pending.pop(trial.config_hash)
        thread.join()
        return box["start"], box.get("heartbeat")

    def _claim(self, trial: Trial, box: dict) -> None:
        from pipeline.tracking.claims import Heartbeat

        try:
            start = claim_trial(self._job, trial)
        except Exception as exc:  # claim_trial catches MLflow's; this is a last resort
            from pipeline.tracking.store import scrub

            start = Start(None, status=UNSTARTED,
                          reason=scrub(f"claim failed ({exc})", self._job.tracking.uri))
        if start.run_id is not None:
            box["heartbeat"] = Heartbeat(self._job.tracking.uri, start.run_id,
                                         self._job.tracking.settings.lease_seconds).__enter__()
        box["start"] = start


class NoClaims:
    """The claims of ranks other than 0: none; they follow rank 0's broadcast decision."""

    def start(self, trial: Trial) -> None:
        pass

    def take(self, trial: Trial) -> tuple[None, None]:
        return None, None
