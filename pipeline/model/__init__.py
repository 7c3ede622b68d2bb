"""Models: registries of Keras building blocks and the model builder."""
