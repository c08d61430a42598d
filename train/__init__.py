"""Training scripts: `python -m train <model> --dataset ... --epochs ... --out ...`.

`loop.py` is the one shared loop (progress bar, checkpoint every epoch, resume, NaN stop);
`families.py` says, per model family, what one training step and one evaluation are.
"""
