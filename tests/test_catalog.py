"""The app's catalog (finding served checkpoints by name and kind) and the cache behind its
services (values computed once, the least recently used dropped past the size)."""

from __future__ import annotations

import pytest

from explorer.ui.services import Memo


def test_a_checkpoint_is_found_by_name_and_kind(catalog):
    assert catalog.checkpoint("mnist-vae").model.name == "vae"
    assert catalog.checkpoint("mnist-vae", "latent") is catalog.latent["mnist-vae"]
    assert catalog.checkpoint("mnist-pixelcnn", "autoregressive") is catalog.autoregressive["mnist-pixelcnn"]
    assert catalog.checkpoint("mnist-pixelcnn") is catalog.autoregressive["mnist-pixelcnn"]
    with pytest.raises(ValueError, match=r"Unknown model 'mnist-pixelcnn'\. Available: .*mnist-vae"):
        catalog.checkpoint("mnist-pixelcnn", "latent")
    with pytest.raises(ValueError, match=r"Unknown autoregressive model 'mnist-vae'\. Available: .*mnist-pixelcnn"):
        catalog.checkpoint("mnist-vae", "autoregressive")
    with pytest.raises(ValueError, match="Unknown model None"):
        catalog.checkpoint(None)
    with pytest.raises(ValueError, match="kind must be one of"):
        catalog.checkpoint("mnist-vae", "classifier")
    assert "mnist-classifier" not in catalog.latent_names + catalog.autoregressive_names


def test_memo_computes_each_value_once():
    calls = []
    memo: Memo[int] = Memo()
    for _ in range(3):
        assert memo.get("a", lambda: calls.append("a") or 1) == 1
    assert calls == ["a"]


def test_a_sized_memo_forgets_the_least_recently_used():
    memo: Memo[str] = Memo(size=2)
    memo.get(1, lambda: "one")
    memo.get(2, lambda: "two")
    memo.get(1, lambda: pytest.fail("1 was remembered"))   # 1 is now the most recent
    memo.get(3, lambda: "three")                          # 2 goes
    assert memo.get(1, lambda: "again") == "one" and memo.get(2, lambda: "recomputed") == "recomputed"


def test_models_have_plain_distinct_names_and_their_metric_explained(catalog, app_folder, tmp_path):
    from explorer.ui import Catalog
    from explorer.ui.common import model_info

    assert catalog.display_name("mnist-vae") == "VAE, 4-D (MNIST)"
    assert catalog.display_name("mnist-vae2d") == "VAE, 2-D (MNIST)"
    assert catalog.display_name("mnist-cvae") == "VAE, 4-D, conditional (MNIST)"
    assert catalog.display_name("fashion-mnist-vae") == "VAE, 4-D (Fashion-MNIST)"
    assert catalog.display_name("mnist-ae") == "Autoencoder, 4-D (MNIST)"
    shown = [label for label, _ in catalog.choices()]
    assert len(set(shown)) == len(shown) and max(map(len, shown)) <= 32  # distinct, short enough for a phone
    assert [value for _, value in catalog.choices()] == catalog.latent_names  # values stay checkpoint names
    assert not any("test_" in label for label in shown)
    info = model_info(catalog, "mnist-vae")
    assert info.startswith("**VAE, 4-D (MNIST)** (`mnist-vae`): test negative ELBO")
    assert "test negative ELBO = 123.40 nats per image, an upper bound on -log p(x)" in info
    # Two files of the same kind, size and data: the file name's extra words tell them apart.
    for stem in ("mnist-vae", "mnist-vae-wide"):
        (tmp_path / f"{stem}.safetensors").write_bytes((app_folder / "mnist-vae.safetensors").read_bytes())
    twins = Catalog.from_folder(tmp_path, download=False)
    assert {twins.display_name(n) for n in twins.latent} == {"VAE, 4-D, mnist-vae (MNIST)", "VAE, 4-D, wide (MNIST)"}


def test_an_importance_weighted_bound_says_its_k(catalog):
    ckpt = catalog.checkpoint("mnist-vae")
    saved = dict(ckpt.metrics)
    try:
        ckpt.metrics.update({"test_iw_nll_k1000": 86.39, "headline": "test_iw_nll_k1000"})
        assert catalog.metric_note("mnist-vae") == (
            "test -log p(x) at most 86.39 nats per image: an importance-weighted bound with k = 1000 samples "
            "(lower is better; a larger k gives a tighter bound) (`test_iw_nll_k1000 = 86.39`)")
    finally:
        ckpt.metrics.clear()
        ckpt.metrics.update(saved)


@pytest.mark.parametrize("binarized", [True, False])
def test_a_vqvae_bound_is_called_one_only_on_binary_images(catalog, binarized):
    ckpt = catalog.checkpoint("mnist-vqvae")
    saved_metrics, saved_training = dict(ckpt.metrics), dict(ckpt.training)
    try:
        ckpt.metrics.update({"test_nll_bound": 153.98, "headline": "test_nll_bound"})
        ckpt.training["binarized"] = binarized
        note = catalog.metric_note("mnist-vqvae")
        assert note.endswith("(`test_nll_bound = 153.98`)") and "153.98 nats per image" in note
        assert ("at most" in note) is binarized
        assert ("not a likelihood" in note) is not binarized
    finally:
        ckpt.metrics.clear()
        ckpt.metrics.update(saved_metrics)
        ckpt.training.clear()
        ckpt.training.update(saved_training)
