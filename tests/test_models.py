import pytest
import torch

from ganforge.config import config_from_dict
from ganforge.models import FAMILIES, DataSpec


def build(family, spec, **model):
    cfg = config_from_dict({"model": {"family": family, **model}}).model
    f = FAMILIES[family]
    nets = f.networks(cfg, spec)
    return nets["G"](), nets["D"]()


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (1, 16, 16), (3, 64, 64), (3, 32, 48), (2,)])
def test_mlp_shapes(shape):
    G, D = build("mlp", DataSpec(shape=shape), latent_dim=8, g_hidden=16, d_hidden=16)
    x = G(torch.randn(5, 8))
    assert x.shape == (5, *shape)
    assert D(x).shape == (5,)
    if len(shape) == 3:
        assert x.abs().max() <= 1.0  # tanh output for images (seed 002's bug was ReLU)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (1, 32, 32), (3, 64, 64), (3, 32, 64), (4, 16, 16)])
def test_dcgan_shapes(shape):
    G, D = build("dcgan", DataSpec(shape=shape), latent_dim=16, g_channels=8, d_channels=8)
    x = G(torch.randn(4, 16))
    assert x.shape == (4, *shape)
    assert D(x).shape == (4,)
    assert x.min() >= -1 and x.max() <= 1


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_seed001_architecture(shape):
    G, D = build("seed001", DataSpec(shape=shape))
    x = G(torch.randn(3, 100))
    assert x.shape == (3, *shape)
    assert D(x).shape == (3,)
    # Seed 001: Dense 100 -> 7*7*256 (with bias), then ConvT 256->128->64->C with 5x5 kernels.
    assert G.dense[0].weight.shape == (256 * (shape[1] // 4) * (shape[2] // 4), 100)
    assert [m.weight.shape[-1] for m in G.convs if isinstance(m, torch.nn.ConvTranspose2d)] == [5, 5, 5]


@pytest.mark.parametrize("shape,doublings", [((1, 28, 28), 2), ((3, 32, 48), 3)])
def test_dcgan_resize_upsampling_has_no_transposed_convs(shape, doublings):
    G, D = build("dcgan", DataSpec(shape=shape), latent_dim=16, g_channels=8, d_channels=8, g_upsample="resize")
    x = G(torch.randn(4, 16))
    assert x.shape == (4, *shape) and x.min() >= -1 and x.max() <= 1
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in G.modules())
    k = sum(isinstance(m, torch.nn.Upsample) for m in G.modules())
    assert k == doublings and [m.kernel_size for m in G.modules() if isinstance(m, torch.nn.Conv2d)] == [(3, 3)] * k
    # nearest-neighbour x2 then a 3x3 conv: every output pixel sees the same number of input pixels, so a
    # constant map stays constant away from the borders (a 4x4 stride-2 transposed conv gives a checkerboard)
    from ganforge.models.dcgan import upsample_conv

    layer = upsample_conv(1, 1, how="resize", bias=False)
    torch.nn.init.constant_(layer[1].weight, 1.0)
    out = layer(torch.ones(1, 1, 6, 6))[0, 0, 1:-1, 1:-1]
    assert out.shape == (10, 10) and torch.all(out == 9.0)


def test_dcgan_rejects_unknown_upsampling():
    from ganforge.errors import ConfigError

    with pytest.raises(ConfigError, match="model.g_upsample must be one of transposed, resize, got 'bilinear'"):
        build("dcgan", DataSpec(shape=(1, 28, 28)), g_upsample="bilinear")


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 4, 4)])
def test_dcgan_clamp_output_reaches_the_data_range_ends(shape):
    """g_output=clamp: pre-activations beyond +-1 give exactly -1 / 1 (a white or black background), where tanh
    only approaches them; within the range it is the identity, and the weights are those of the tanh G."""
    from ganforge.errors import ConfigError

    G, _ = build("dcgan", DataSpec(shape=shape), latent_dim=16, g_channels=8, d_channels=8, g_output="clamp")
    tanh_G, _ = build("dcgan", DataSpec(shape=shape), latent_dim=16, g_channels=8, d_channels=8)
    assert G.state_dict().keys() == tanh_G.state_dict().keys()  # no parameters added: checkpoints interchange
    last = G.blocks[-1]
    assert isinstance(last, torch.nn.Hardtanh)
    pre = torch.tensor([-3.0, -1.0, -0.25, 0.5, 1.0, 7.0])
    assert last(pre).tolist() == [-1.0, -1.0, -0.25, 0.5, 1.0, 1.0]
    assert torch.tanh(pre)[0] > -1  # what the clamp fixes: tanh(-3) is still a faint pixel, not black
    G.blocks[-2].bias.data.fill_(-5.0)  # a strongly negative bias drives every pixel to the background
    x = G.eval()(torch.randn(4, 16))
    assert x.shape == (4, *shape) and torch.all(x >= -1) and (x == -1).float().mean() > 0.9
    with pytest.raises(ConfigError, match="model.g_output must be one of tanh, clamp, got 'sigmoid'"):
        build("dcgan", DataSpec(shape=(1, 28, 28)), g_output="sigmoid")


def test_dcgan_rejects_points():
    from ganforge.errors import ConfigError

    with pytest.raises(ConfigError):
        build("dcgan", DataSpec(shape=(2,)))


@pytest.mark.parametrize(
    "options",
    [{"d_pack": 2}, {"d_pack": 4}, {"d_mbstd": True}, {"d_minibatch_discrimination": True},
     {"d_spectral_norm": True, "g_spectral_norm": True}],
)
@pytest.mark.parametrize("family,shape", [("mlp", (2,)), ("dcgan", (1, 16, 16))])
def test_discriminator_options(family, shape, options):
    G, D = build(family, DataSpec(shape=shape), latent_dim=4, **options)
    x = G(torch.randn(8, 4))
    logits = D(x)
    assert logits.shape == (8 // options.get("d_pack", 1),)
    logits.sum().backward()  # gradients flow through the optional layers


def test_conditional_models_use_labels():
    G, D = build("dcgan", DataSpec(shape=(1, 16, 16), num_classes=10), latent_dim=8, conditional=True,
                 g_channels=8, d_channels=8)
    z = torch.randn(4, 8)
    G.eval()
    a = G(z, torch.tensor([0, 0, 0, 0]))
    b = G(z, torch.tensor([1, 1, 1, 1]))
    assert not torch.allclose(a, b)
    assert D(a, torch.tensor([0, 1, 2, 3])).shape == (4,)
    with pytest.raises(ValueError):
        G(z)
