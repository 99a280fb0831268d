"""Training across a cluster: published Megatron-LM runs predicted from shape, hardware and layout alone; the layout's
rules; the planner (its layouts divide and fit, its numbers are the derivation's).

The conventions of each table of tests/data/cluster-runs-dev.json, and why, are in tests/cluster_runs.py.
"""

from __future__ import annotations

import json
import statistics

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from derive import api, query
from derive import hardware as hw
from derive.errors import DeriveError
from derive.formulas import plan as PN
from tests.cluster_runs import CALIBRATED_ON, records, rows
from tests.conftest import run_cli

TOLERANCE = 0.15
GENERATION_PRESETS = {"v100": "v100-sxm3-32gb", "a100": "a100-80gb", "h100": "h100-sxm"}


def _derived(r) -> dict[str, tuple[float, str]]:
    """Every figure a row is checked on: the published ones, and MFU / TFLOP/s worked out from them where the table
    quotes the other convention (the model-to-hardware FLOP ratio is the engine's exact count of the same step)."""
    out = {k: (v, "published") for k, v in r.published.items()}
    req = r.request()
    if "training.mfu" not in out:  # hardware FLOP/s quoted: MFU = that × model/hardware FLOPs / peak
        hfu = api.value("training.hfu", **req)
        mfu = api.value("training.mfu", **req)
        peak = float(hw.preset(r.hardware).values({})[hw.S.F_peak])
        out["training.mfu"] = (r.published["training.tflops_per_device"] / peak * float(mfu / hfu),
                               "derived: published hardware TFLOP/s × model/hardware FLOPs / peak")
    if "training.tflops_per_device" not in out:  # MFU quoted: model FLOP/s = MFU × peak
        peak = float(hw.preset(r.hardware).values({})[hw.S.F_peak])
        out["training.tflops_per_device"] = (r.published["training.mfu"] * peak, "derived: published MFU × peak")
    return out


@pytest.fixture(scope="module")
def predictions():
    out = []
    for r in rows()[0]:
        for qid, (pub, how) in _derived(r).items():
            opts = dict(r.options)
            if qid == "training.tflops_per_device" and how.startswith("derived: published MFU"):
                opts["tflops"] = "model"
            v = float(api.value(qid, **{**r.request(), "options": opts}))
            out.append((r, qid, v, pub, how))
    return out


@pytest.mark.slow  # seconds: the published tables, predicted row by row
def test_every_row_that_states_its_layout_within_15_percent(predictions):
    errors = {}
    for r, qid, v, pub, _ in predictions:
        errors.setdefault(r.generation, []).append((abs(v / pub - 1), r.id, qid))
    lines = []
    for gen, es in sorted(errors.items()):
        worst = max(es)
        lines.append(f"{gen}: {len(es)} figures, median {statistics.median(e for e, *_ in es):.1%}, worst "
                     f"{worst[0]:.1%} ({worst[1]} {worst[2]})")
    print("\n".join(lines))
    bad = [(f"{e:.1%}", rid, q) for es in errors.values() for e, rid, q in es if e > TOLERANCE]
    assert not bad, bad
    # every table is in: H100 2024 (9 rows), A100 2022 (4), A100 2021 (10), V100/A100 2020 (12)
    assert sorted({r.id.split("-")[2] for r, *_ in predictions}) == ["2020", "2021apr", "2022", "2024"]
    assert len({r.id for r, *_ in predictions}) == 35


def test_rows_without_a_layout_are_skipped_with_the_reason():
    kept, skipped = rows()
    # ten January-2021 rows give only the combined model-parallel size; two strong-scaling points give no layout
    assert len(skipped) == 12 and len(kept) + len(skipped) == 47
    assert all(skipped[k].startswith("layout not stated") for k in skipped if "2021jan" in k)
    assert all("strong-scaling" in skipped[k] for k in skipped if "strong" in k)


def test_a_prediction_says_what_it_assumes():
    # the 2024 70B row states neither micro-batch nor vpp
    r = next(x for x in rows()[0] if x.id == "megatron-readme-2024-h100-70B")
    d = api.show("training.mfu", **r.request())
    text = " ".join(d.conventions)
    assert "micro-batch b = 1 sequence assumed" in text and "vpp = 1 assumed" in text
    # the 2022 175B row states both: nothing assumed about them
    r = next(x for x in rows()[0] if x.id == "megatron-readme-2022-a100-mfu-175B")
    text = " ".join(api.show("training.mfu", **r.request()).conventions)
    assert "assumed" not in text.replace("ZeRO stage 0", "")


@pytest.mark.slow
@pytest.mark.parametrize("generation", ["v100", "a100", "h100"])
def test_shipped_constants_are_what_derive_calibrate_fits(tmp_path, generation):
    meas = tmp_path / "m.json"
    meas.write_text(json.dumps(records(generation)))
    prof = tmp_path / "p.json"
    out = run_cli("calibrate", "--hardware", GENERATION_PRESETS[generation], "--measurements", str(meas),
                  "--out", str(prof))
    assert out.returncode == 0, out.stderr
    fitted = json.loads(prof.read_text())["calibration"]["training"]
    shipped = hw.preset(GENERATION_PRESETS[generation]).calibration["training"]["constants"]
    assert fitted["constants"].keys() == shipped.keys()
    for k, v in shipped.items():
        assert fitted["constants"][k] == pytest.approx(v, rel=2e-3), k
    assert fitted["worst_abs_residual"] < TOLERANCE
    # one record per row of the generation, each calibrated on its table's own figure
    assert len(fitted["records"]) == {"v100": 4, "a100": 22, "h100": 9}[generation]
    assert {r["quantity"] for r in fitted["records"]} <= set(CALIBRATED_ON.values())


@pytest.mark.slow  # seconds: the published tables, predicted row by row
def test_a100_constants_fitted_on_one_table_predict_the_others(tmp_path):
    # fit on the April-2021 table alone; the 2020 and 2022 A100 rows (other software, other conventions) follow
    train = [r for r in records("a100") if "2021apr" in r["label"]]
    meas = tmp_path / "m.json"
    meas.write_text(json.dumps(train))
    prof = tmp_path / "p.json"
    assert run_cli("calibrate", "--hardware", "a100-80gb", "--measurements", str(meas), "--out",
                   str(prof)).returncode == 0
    errors = []
    for r in rows()[0]:
        if r.generation != "a100" or "2021apr" in r.id:
            continue
        p = json.loads(prof.read_text())
        p["hardware"]["id"] = r.hardware  # the 2020 rows ran on 40 GB cards: same constants, their own figures
        p["hardware"].update({k: v for k, v in hw.preset(r.hardware).raw.items() if k != "calibration"})
        f = tmp_path / f"{r.hardware}.json"
        f.write_text(json.dumps(p))
        for qid, pub in r.published.items():
            v = float(api.value(qid, **{**r.request(), "hardware": str(f)}))
            errors.append(abs(v / pub - 1))
    # held out, a little looser than in-sample: 15.1% worst (the 2020 data-parallel 8B row's step time), 6.9% median
    assert statistics.median(errors) < 0.08 and max(errors) < 0.20, errors


# ---- the layout's rules --------------------------------------------------------------------------

LLAMA = dict(model="llama-3-70b", hardware="h100-sxm", s=4096)


@pytest.mark.parametrize("sets,needle", [
    (dict(tp=3, n_dev=96, global_batch=96), "tp=3 does not divide the 64 query heads"),
    (dict(pp=3, n_dev=96, global_batch=96), "80 layers do not split into pp·vpp = 3·1"),
    (dict(pp=4, vpp=3, n_dev=64, global_batch=64), "pp·vpp = 4·3 = 12"),
    (dict(tp=8, n_dev=64, global_batch=100), "global_batch=100 is not a multiple of dp·b = 8·1"),
    (dict(tp=8, n_dev=100), "n_dev=100 is not a multiple of tp·pp·cp = 8"),
    (dict(tp=8, dp=4, n_dev=64), "n_dev=64 but tp·pp·dp·cp = 32"),
    (dict(ep=2, n_dev=8), "no routed experts"),
])
def test_divisibility_errors_are_one_line(sets, needle):
    with pytest.raises(DeriveError, match=needle.replace("(", r"\(").replace(")", r"\)").replace("·", "·")):
        api.value("training.step_time", **LLAMA, **sets)
    args = ["show", "training.step_time", "--model", "llama-3-70b", "--hardware", "h100-sxm", "--set", "s=4096"]
    for k, v in sets.items():
        args += ["--set", f"{k}={v}"]
    out = run_cli(*args)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_experts_must_divide_by_ep():
    with pytest.raises(DeriveError, match="ep=3 does not divide the 8 routed experts"):
        api.value("training.step_time", model="mixtral-8x7b", hardware="h100-sxm", s=4096, n_dev=48, ep=3,
                  global_batch=48)


def test_interleaving_needs_whole_rounds_of_micro_batches():
    with pytest.raises(DeriveError, match="multiple of pp = 4"):
        api.value("training.step_time", **LLAMA, n_dev=32, tp=8, pp=4, vpp=2, global_batch=6)


def test_layout_that_does_not_fit_is_a_verdict():
    # llama-3-70b whole on one H100 (16 B/param of training states alone: 1.1 TB)
    out = run_cli("show", "training.step_time", "--model", "llama-3-70b", "--hardware", "h100-sxm", "--set",
                  "s=4096", "--format", "json")
    assert out.returncode == 2
    v = json.loads(out.stdout)
    assert v["verdict"] == "does_not_fit" and v["needed"] > 1.1e12


# ---- the planner -----------------------------------------------------------------------------------

def _plan(**kw):
    ctx = query.context(query.request(**kw))
    ctx.user_sets = frozenset(k for k in kw if k not in ("model", "hardware", "options"))
    return PN.plan_training(ctx), kw


@pytest.mark.slow  # seconds: the published tables, predicted row by row
def test_planner_numbers_are_the_derivations():
    # the planner evaluates the same trees numerically: its step time and memory equal derive show's, layout by layout
    plan, kw = _plan(model="llama-3-8b", hardware="a100-80gb", s=4096, n_dev=64, global_batch=256, D="100B")
    picks = plan.results[:3] + plan.results[len(plan.results) // 2::max(1, len(plan.results) // 8)]
    for r in picks:
        req = {**kw, **r.cand.sets(), "options": r.cand.options()}
        assert float(api.value("memory.training_peak", **req)) == pytest.approx(r.memory, rel=1e-9)
        if r.fits:
            assert float(api.value("training.step_time", **req)) == pytest.approx(r.step_time, rel=1e-9)
            assert float(api.value("training.mfu", **req)) == pytest.approx(r.mfu, rel=1e-9)


@pytest.mark.slow
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=st.sampled_from(["llama-3-8b", "llama-2-13b", "mistral-7b", "gpt2-xl", "mixtral-8x7b"]),
       hardware=st.sampled_from(["a100-80gb", "h100-sxm", "v100-sxm3-32gb"]),
       nodes=st.sampled_from([1, 2, 4, 16]), seq=st.sampled_from([1024, 4096]))
def test_every_proposed_layout_divides_and_fits(model, hardware, nodes, seq):
    n = nodes * hw.preset(hardware).devices_per_node
    try:
        plan, kw = _plan(model=model, hardware=hardware, s=seq, n_dev=n, global_batch=4 * n)
    except DeriveError as exc:  # no layout divides: a clear error, never a crash
        assert "no layout" in str(exc)
        return
    for r in plan.valid[:4]:
        req = {**kw, **r.cand.sets(), "options": r.cand.options()}
        ctx = api.context(**req)
        from derive.formulas import parallel as PL

        PL.layout(ctx)  # every divisibility rule holds (raises otherwise)
        need = float(api.value("memory.training_peak", **req))
        assert need <= plan.budget * (1 + 1e-12)
        assert r.cand.tp * r.cand.pp * r.cand.dp * r.cand.cp == n


@pytest.mark.slow  # seconds: the published tables, predicted row by row
def test_plan_training_cli_ranks_explains_and_says_why():
    out = run_cli("plan", "training", "--model", "llama-3-70b", "--hardware", "h100-sxm", "--set", "n_dev=1024",
                  "--set", "D=15T", "--set", "s=8192", "--set", "global_batch=2048", "--top", "5")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "rank  layout" in text and "mem/device" in text and "the best, term by term" in text
    assert "T_step = " in text and "T_mb = " in text and "why the others lose" in text
    assert "does not fit" in text or "do not fit" in text
    lines = [x for x in text.splitlines() if x[:2].strip().isdigit()]
    assert len(lines) >= 5
    js = run_cli("plan", "training", "--model", "llama-3-70b", "--hardware", "h100-sxm", "--set", "n_dev=1024",
                 "--set", "D=15T", "--set", "s=8192", "--set", "global_batch=2048", "--format", "json")
    data = json.loads(js.stdout)
    best = data["best"]
    assert best["rank"] == 1 and best["fits"] and best["memory_per_device_bytes"] <= 72 * 2**30
    assert best["layout"]["tp"] * best["layout"]["pp"] * best["layout"]["dp"] * best["layout"]["cp"] == 1024
    # 15T tokens / (2048 · 8192 tokens per step) = 894,069.7 steps
    assert data["inputs"]["steps"] == pytest.approx(15e12 / (2048 * 8192))
    assert best["time_to_train_s"] == pytest.approx(best["step_time_s"] * 15e12 / (2048 * 8192))
    # cost = time × 1024 devices × $3/hour
    assert best["cost_usd"] == pytest.approx(best["time_to_train_s"] * 1024 * 3 / 3600)
    assert all(x["reason"] for x in data["layouts"])
    ranked = [x["step_time_s"] for x in data["layouts"] if x["fits"]]
    assert ranked == sorted(ranked)
    assert best["derivation"]["quantity"] == "training.step_time"


def test_plan_serving_names_the_binding_constraint():
    out = run_cli("plan", "serving", "--model", "llama-3-70b", "--hardware", "h100-sxm", "--set", "users=256",
                  "--set", "s=4096", "--set", "ttft=2s", "--set", "tpot=50ms", "--set", "n_out=512",
                  "--format", "json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    best = data["best"]
    assert best["tpot_s"] <= 0.05 and best["ttft_s"] <= 2 and best["devices"] >= 2
    assert best["binding"].split(":")[0] in ("memory", "TPOT", "users")
    # tp = 1 cannot hold the 141 GB of weights on an 80 GB card: rejected with the reason
    assert any(r.startswith("tp1: the weights alone") for r in data["rejected"])
    # every plan divides the 64 query heads
    assert all(64 % p["tp"] == 0 for p in data["plans"])
