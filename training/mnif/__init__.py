"""Mixtures of neural implicit functions (seed 003): auto-decoding and meta-learning (in the engine), their
evaluation by rendering, and the latent DDPM that samples new worlds."""
