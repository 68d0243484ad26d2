"""Weight-space learning on Instant-NGP fields (seed 004): tokens, augmentation, the autoencoder and the grid arm,
their training (in the engine) and evaluation."""
