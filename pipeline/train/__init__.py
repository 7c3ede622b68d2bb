"""Training: the Horovod worker, the driver-side sweep loop, and Keras callbacks."""
