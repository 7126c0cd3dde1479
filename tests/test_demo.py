"""``python -m neurenix.demo``: SimpleNN reaches 95 % on the digits, tracks PyTorch
epoch by epoch from the same start, and writes its convergence plot."""
import pytest

from neurenix import demo

def test_demo_trains_digits_and_writes_plot(tmp_path, capsys):
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    png = tmp_path / "conv.png"
    res = demo.main(["--plot", str(png)])
    text = capsys.readouterr().out
    assert res["accuracy"] >= 0.95
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert res["plot"] == str(png.resolve()) and str(png.resolve()) in text
    assert "epoch  20/20 [##############################]" in text
    ref = res["torch"]
    if ref is not None:   # the same initial weights, optimizer and batches as PyTorch
        for a, b in zip(res["history"]["loss"], ref["loss"]):
            assert abs(a - b) <= 1e-5 * b
        assert abs(ref["acc"][-1] - res["accuracy"]) <= 1 / 360 + 1e-12


def test_demo_rejects_bad_epochs(capsys):
    with pytest.raises(SystemExit) as exc:
        demo.main(["--epochs", "0"])
    assert exc.value.code == 2 and "--epochs must be >= 1" in capsys.readouterr().err
