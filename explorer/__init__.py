"""Latent Explorer: see how generative models work.

The library is split by job: `data` reads data sets, `models` holds one module per model
family, `checkpoints` stores and rebuilds trained models, `latent` and `sampling` are pure
tensor functions the app calls, `metrics` scores models, `packing` stores images in
checkpoint metadata, `intake` turns user pictures into digits, `render` turns tensors into
pictures, and `ui` is the Gradio app. Nothing here imports `train/`.
"""

__version__ = "0.1.0"
