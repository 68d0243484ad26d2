"""The weight-space autoencoder of seed 004 (sec. 4.4-4.5, appendix 6.0.1-6.0.3), over `training.weightspace.tokens`.

  E   = W_in T + PE,   PE = W_xyz xyz + emb_n[n] + emb_l[l] + emb_k[k]      tokens [B, C, D] -> [B, C, E]
  Z   = W_lat Encoder(E)                                                   latent [B, C, L]     (eq. 2)
  T^  = W_out Decoder(W_up Z + PE)                                         reconstruction [B, C, D]
  p   = MLP(attention-pool(Z[content]))                                    NT-Xent embedding [B, K]
  q^  = Linear(first token of Layer([Z_a[POS]; Z_b[POS]] + pos))          relative rotation [B, 4]

Encoder and decoder are plain `nn.TransformerEncoder` stacks (GELU, pre-norm). [POS] tokens enter as zeros and
are told apart only by their positional embedding; the content part of Z is every token but them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from renderer.errors import RedcubeError
from training.weightspace.tokens import POS, Tokenizer


@dataclass
class WeightSpaceConfig:
    embed: int = 256
    """Transformer width E (the seed: 1024)."""
    latent: int = 64
    """Latent width L per token (the seed: 128)."""
    heads: int = 4
    """Attention heads."""
    layers: int = 4
    """Transformer layers in the encoder and in the decoder."""
    dropout: float = 0.1
    """Dropout in the transformer layers (the seed: 0.3)."""
    ntx_hidden: int = 64
    """Hidden units of the NT-Xent projection MLP."""
    ntx_dim: int = 32
    """Output size of the NT-Xent projection."""

    def __post_init__(self):
        if min(self.embed, self.latent, self.heads, self.layers, self.ntx_hidden, self.ntx_dim) < 1 or self.embed % self.heads:
            raise RedcubeError("weight-space embed, latent, heads, layers and the NT-Xent sizes must be positive and embed a "
                               "multiple of heads; fix the model config.")
        if not 0 <= self.dropout < 1:
            raise RedcubeError("weight-space dropout must lie in [0, 1); fix the model config.")


def transformer(width: int, heads: int, layers: int, dropout: float) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout, activation="gelu", batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


class PositionalEmbedding(nn.Module):
    """PE = W_xyz xyz + emb_n[n] + emb_l[l] + emb_k[k] for a tokenizer's fixed sequence: [C, E]."""

    def __init__(self, tokenizer: Tokenizer, width: int):
        super().__init__()
        self.register_buffer("xyz", tokenizer.xyz.clone(), persistent=False)
        self.register_buffer("nlk", tokenizer.nlk.clone(), persistent=False)
        self.xyz_map = nn.Linear(3, width)
        sizes = (tokenizer.nlk.max(0).values + 1).tolist()
        self.n, self.l, self.k = (nn.Embedding(s, width) for s in sizes)

    def forward(self) -> torch.Tensor:
        return self.xyz_map(self.xyz) + self.n(self.nlk[:, 0]) + self.l(self.nlk[:, 1]) + self.k(self.nlk[:, 2])


class AttentionPool(nn.Module):
    """[B, C, L] -> [B, L]: a softmax over tokens of a learned score, then the weighted sum."""

    def __init__(self, width: int):
        super().__init__()
        self.score = nn.Linear(width, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return (torch.softmax(self.score(z), dim=1) * z).sum(1)


class RotationHead(nn.Module):
    """Two views' [POS] latents [B, P, L] each -> relative rotation [B, 4] (not normalised; the loss normalises)."""

    def __init__(self, n_pos: int, width: int, dropout: float):
        super().__init__()
        self.position = nn.Parameter(torch.zeros(2 * n_pos, width))
        heads = 2 if width % 2 == 0 else 1
        self.layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout, activation="gelu", batch_first=True, norm_first=True)
        self.out = nn.Linear(width, 4)

    def forward(self, pos_a: torch.Tensor, pos_b: torch.Tensor) -> torch.Tensor:
        x = torch.cat([pos_a, pos_b], 1) + self.position
        return self.out(self.layer(x)[:, 0])


class WeightSpaceAutoencoder(nn.Module):
    kind = "weightspace"

    def __init__(self, config: WeightSpaceConfig, tokenizer: Tokenizer):
        super().__init__()
        c = config
        self.config = config
        self.register_buffer("is_pos", tokenizer.kind == POS, persistent=False)
        self.pe_in, self.pe_out = PositionalEmbedding(tokenizer, c.embed), PositionalEmbedding(tokenizer, c.embed)
        self.embed_in = nn.Linear(tokenizer.dim, c.embed)
        self.encoder = transformer(c.embed, c.heads, c.layers, c.dropout)
        self.to_latent = nn.Linear(c.embed, c.latent)
        self.from_latent = nn.Linear(c.latent, c.embed)
        self.decoder = transformer(c.embed, c.heads, c.layers, c.dropout)
        self.embed_out = nn.Linear(c.embed, tokenizer.dim)
        self.pool = AttentionPool(c.latent)
        self.ntx = nn.Sequential(nn.Linear(c.latent, c.ntx_hidden), nn.ReLU(), nn.Linear(c.ntx_hidden, c.ntx_dim))
        self.rotation = RotationHead(int(self.is_pos.sum()), c.latent, c.dropout)

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokens [B, C, D] -> latent Z [B, C, L]."""
        return self.to_latent(self.encoder(self.embed_in(tokens) + self.pe_in()))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latent Z [B, C, L] -> reconstructed tokens [B, C, D]."""
        return self.embed_out(self.decoder(self.from_latent(z) + self.pe_out()))

    def embedding(self, z: torch.Tensor) -> torch.Tensor:
        """The NT-Xent projection [B, K] of Z's content tokens (every token but [POS])."""
        return self.ntx(self.pool(z[:, ~self.is_pos]))

    def relative_rotation(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        """Predicted rotation [B, 4] from view a to view b, from their [POS] latents."""
        return self.rotation(z_a[:, self.is_pos], z_b[:, self.is_pos])
