"""The vendored DCGAN face generator (DigiFace-1M, from gan-face-generate 1.1.1, MIT).

An identity is a latent vector; the generator turns latents into 64×64 RGB faces.
"""

from __future__ import annotations

import copy
from functools import lru_cache

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from fraudit.resources import dcgan_dir, verify_shipped

LATENT_DIM = 100
FACE_SIZE = 64


class DCGANGenerator(nn.Module):
    """The PyTorch-tutorial DCGAN generator: z (100) → 64×64×3 in [-1, 1]."""

    def __init__(self, nz: int = LATENT_DIM, ngf: int = 64, nc: int = 3) -> None:
        super().__init__()

        def up(c_in: int, c_out: int, stride: int, padding: int) -> list[nn.Module]:
            return [nn.ConvTranspose2d(c_in, c_out, 4, stride, padding, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]

        self.main = nn.Sequential(
            *up(nz, ngf * 8, 1, 0),
            *up(ngf * 8, ngf * 4, 2, 1),
            *up(ngf * 4, ngf * 2, 2, 1),
            *up(ngf * 2, ngf, 2, 1),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z.view(z.shape[0], -1, 1, 1))


@lru_cache(maxsize=2)
def load_generator(dtype: torch.dtype = torch.float32) -> DCGANGenerator:
    path = dcgan_dir() / "generator.safetensors"
    verify_shipped(path)
    state = load_file(str(path))
    generator = DCGANGenerator().to(dtype)
    generator.load_state_dict({k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()})
    return generator.eval().requires_grad_(False)


@torch.inference_mode()
def generate(latents: np.ndarray, *, batch_size: int = 256, exact: bool = False,
             device: str | torch.device = "cpu") -> np.ndarray:
    """Faces for ``latents`` (N×100) as uint8 N×64×64×3.

    ``exact`` runs the generator in float64. In float32 the CPU's convolution kernels
    (which depend on the instruction set, the thread count and the batch size) move a
    few dozen of 7 million grey levels; in float64 those differences sit nine orders of
    magnitude below half a grey level, so the same latents give the same bytes on every
    machine. The built-in pairing faces are made this way, because fraudit ships a
    trusted model's embeddings of them keyed by their bytes. ``device`` (a GPU) renders
    large worlds faster; its float32 bytes differ from the CPU's like any machine's.
    """
    dtype = torch.float64 if exact else torch.float32
    generator = load_generator(dtype)
    if torch.device(device).type != "cpu":  # a copy: the cached CPU generator stays where it is
        generator = copy.deepcopy(generator).to(device)
    out = np.empty((len(latents), FACE_SIZE, FACE_SIZE, 3), dtype=np.uint8)
    for start in range(0, len(latents), batch_size):
        z = torch.from_numpy(np.ascontiguousarray(latents[start : start + batch_size],
                                                  dtype=np.float64 if exact else np.float32)).to(device)
        images = generator(z).permute(0, 2, 3, 1)
        out[start : start + len(z)] = ((images + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).cpu().numpy()
    return out
