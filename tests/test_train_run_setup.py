"""models.trainer.pretrain.run_setup's optimizer: AdamW's fused kernel where PyTorch has one,
taking the same steps as PyTorch's for-loop AdamW (the peer) up to rounding."""
import torch
from torch import nn

from models.trainer.pretrain.run_setup import make_optimizer
from models.trainer.pretrain.settings import resolve_settings


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 4))


def test_the_optimizer_is_fused_on_a_cpu_and_steps_as_the_for_loop_adamw(tmp_path):
    s = resolve_settings("conformer-s", tmp_path, lr=1e-2)
    ours, peer = _net(), _net()
    # BiT's groups are dicts, a float model's one group too: both shapes are taken
    optimizer = make_optimizer([{"params": list(ours.parameters())}], s)
    reference = torch.optim.AdamW(peer.parameters(), lr=1e-2, betas=(0.9, 0.98), eps=1e-6,
                                  weight_decay=0.01, foreach=False)
    assert optimizer.param_groups[0]["fused"] is True
    x = torch.randn(32, 8)
    for _ in range(5):
        for net, opt in ((ours, optimizer), (peer, reference)):
            opt.zero_grad()
            net(x).square().mean().backward()
            opt.step()
    for mine, theirs, start in zip(ours.parameters(), peer.parameters(), _net().parameters()):
        assert torch.allclose(mine, theirs, rtol=1e-5, atol=1e-6)
        assert (mine - start).abs().max() > 1e-3  # the steps moved it


def test_a_loop_optimizers_state_resumes_in_the_fused_one(tmp_path):
    s = resolve_settings("conformer-s", tmp_path)
    net = _net()
    old = torch.optim.AdamW(net.parameters(), foreach=False)
    net(torch.randn(4, 8)).sum().backward()
    old.step()
    resumed = make_optimizer([{"params": list(net.parameters())}], s)
    resumed.load_state_dict(old.state_dict())
    net(torch.randn(4, 8)).sum().backward()
    resumed.step()  # a checkpoint written before the fused kernel still steps
    assert int(resumed.state[next(net.parameters())]["step"]) == 2
