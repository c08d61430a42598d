"""The checkpoints shipped with Latent Explorer, as package data: this folder in a checkout,
its installed copy after `pip install .`. Code never lives here; `FOLDER` is where the files
are (read through `explorer.checkpoints.shipped_folder`, which lets $LATENT_EXPLORER_TRAINED
point elsewhere). What each model is and how it was trained: README.md beside this file."""

from pathlib import Path

FOLDER = Path(__file__).resolve().parent
