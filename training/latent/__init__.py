"""Latent mode (seed 000's "More More Renders"): pose networks learning TinyVAE latents, from the stream or from
pre-encoded shards."""
