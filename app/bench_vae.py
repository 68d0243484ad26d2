"""`redcube bench --only vae`: TinyVAE encode and decode times at 512² and 256², and the decoder's
speed-ups (channels_last, torch.compile, reduced precision) against the plain decoder, measured side by
side in one run (alternating, best of repeats). `decode_speedup` is the best of them."""

from __future__ import annotations

import copy

import torch

from app.bench_mnif import seconds_each
from renderer.camera import sample_poses
from renderer.rasterizer import Rasterizer
from renderer.scene import Scene
from renderer.tinyvae import TinyVAE
from training.vae import SCENE_VAE, load_vae

RESOLUTIONS = (512, 256)


def _best_ms(fn, repeats: int = 2, sync=lambda: None) -> float:
    """Best wall-clock ms of `repeats` calls (after one warm-up call)."""
    fn()
    sync()
    return 1000 * min(seconds_each(lambda: (fn(), sync()), repeats))


def bench_vae(scene: Scene) -> tuple[dict, dict]:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    low = torch.float16 if device == "cuda" else torch.bfloat16
    weights = "scene" if SCENE_VAE.exists() else "random (timing does not depend on the weights)"
    vae = (load_vae("scene") if SCENE_VAE.exists() else TinyVAE()).eval().to(device).use_channels_last(False)  # plain
    with Rasterizer(scene) as r:
        frames = {res: torch.from_numpy(r.render(sample_poses(scene, 1, torch.Generator().manual_seed(0)).numpy(), res)[0])
                  for res in RESOLUTIONS}
    figs: dict = {"vae_device": device, "vae_weights": weights, "vae_torch_threads": torch.get_num_threads()}
    with torch.inference_mode():
        latents = {res: vae.encode(x) for res, x in frames.items()}
        for res in RESOLUTIONS:
            figs[f"vae_encode_ms_{res}"] = round(_best_ms(lambda: vae.encode(frames[res]), sync=sync), 1)
            figs[f"vae_decode_ms_{res}"] = round(_best_ms(lambda: vae.decode(latents[res]), sync=sync), 1)
        # decoder variants at 512², alternating with the plain decoder
        z = latents[512]
        fast = copy.deepcopy(vae).use_channels_last()
        compiled = torch.compile(vae.ae.decoder)
        zc = z.permute(0, 3, 1, 2).contiguous()

        def low_precision():
            with torch.autocast(device, dtype=low):
                return vae.decode(z)

        variants = {"plain": lambda: vae.decode(z), "channels_last": lambda: fast.decode(z),
                    "compile": lambda: compiled(zc), f"{str(low).removeprefix('torch.')}": low_precision}
        ms = {k: float("inf") for k in variants}
        failed = {}
        for round_ in range(2):
            for name, fn in variants.items():
                if name in failed or (round_ and ms[name] > 3 * ms["plain"]):  # a clear loser is not timed again
                    continue
                try:
                    ms[name] = min(ms[name], _best_ms(fn, repeats=1, sync=sync))
                except Exception as e:  # a missing compiler is a finding, not a crash
                    failed[name] = f"unavailable: {type(e).__name__}"
    ratios = {f"decode_{k}_vs_plain": (failed[k] if k in failed else round(ms["plain"] / ms[k], 3)) for k in variants if k != "plain"}
    best = min((k for k in variants if k != "plain" and k not in failed), key=lambda k: ms[k], default=None)
    figs.update({f"vae_decode_ms_512_{k}": round(v, 1) for k, v in ms.items() if k not in failed})
    figs["vae_decode_best"] = best
    ratios["decode_speedup"] = round(ms["plain"] / ms[best], 3) if best else 1.0
    return figs, ratios
