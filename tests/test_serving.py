"""Serving plans: users that fit, the fewest devices for memory and tokens/s, and clear refusals."""

import json
import math
from fractions import Fraction as Fr

import pytest
import sympy as sp

from derive import api
from derive.errors import Infeasible
from tests.conftest import run_cli

GiB = 2**30
W70 = 2 * 68_976_648_192  # LLaMA 2 70B weights in BF16: 137,953,296,384 B
KV70_SEQ = 2 * 80 * 8 * 128 * 2 * 4096  # one 4096-token sequence: 1,342,177,280 B
#: the textbook serving arithmetic these exercises were written under: any whole number of devices in one
#: tensor-parallel group, all memory usable, no all-reduce, every weight read per step, the 2N rule
TEXTBOOK = {"tp_degrees": "any", "mem_util": "1", "allreduce": "none", "weight_reads": "all", "flops_model": "rule",
            "fit": "ignore"}
TEXTBOOK_ARGS = [x for k, v in TEXTBOOK.items() for x in (("--set", f"{k}={v}") if k == "mem_util" else
                                                          ("--option", f"{k}={v}"))]
H100 = dict(model="llama-2-70b", hardware="h100-sxm", defaults=TEXTBOOK)


def test_ex_7_7_min_gpus_memory():
    # (137,953,296,384 + 100·1,342,177,280) B = 272,171,024,384 B over 80 GiB = 85,899,345,920 B per card
    # = 3.17 cards → 4 (the seed's ~8 assumes 5 GB of KV per user; it is 1.34 GB)
    need = W70 + 100 * KV70_SEQ
    assert need == 272_171_024_384
    assert math.ceil(Fr(need, 80 * GiB)) == 4
    assert api.value("serving.min_gpus", users=100, s=4096, **H100) == 4
    assert api.value("serving.memory_needed", users=100, s=4096, **H100) == need
    # the solver on memory.inference gives the same (exercise 7.7 as a solve)
    from derive.solve import solve

    sol = solve("memory.inference", "n_dev*M_dev", "n_dev", at_most=True, b=100, s=4096, **H100)
    assert sol.recommended.value == 4


def test_serving_plan_memory_binds():
    # with 30 token/s each: the step may take 1/30 s; on one card it takes the memory time
    # 272,171,024,384 / 3.35e12 = 81.2 ms (compute 100·2N/989.4e12 = 13.9 ms) → ceil(81.2/33.3) = 3 cards;
    # memory needs 4, so memory binds
    d = api.show("serving.min_gpus", users=100, s=4096, tps_target=30, **H100)
    assert d.value == 4
    assert d.extra["binding"] == "memory" and d.extra["n_memory"] == 4 and d.extra["n_speed"] == 3
    speed = math.ceil(Fr(W70 + 100 * KV70_SEQ, 3_350_000_000_000) * 30)
    assert speed == 3


def test_serving_plan_speed_binds():
    # 10 users, 1024 tokens, 100 token/s each: memory 137.95e9 + 10·1024·327,680 = 141,308,739,584 B → 2 cards;
    # one card's step reads it all: 141,308,739,584/3.35e12 = 42.2 ms, budget 10 ms → 5 cards (bandwidth binds)
    need = W70 + 10 * 1024 * 327_680
    assert math.ceil(Fr(need, 80 * GiB)) == 2
    assert math.ceil(Fr(need, 3_350_000_000_000) * 100) == 5
    d = api.show("serving.min_gpus", users=10, s=1024, tps_target=100, **H100)
    assert d.value == 5 and d.extra["binding"] == "speed" and d.extra["speed_side"] == "bandwidth"


def test_serving_plan_from_the_command_line():
    out = run_cli("show", "serving.min_gpus", *TEXTBOOK_ARGS, "--lenient", "--model", "llama-2-70b",
                  "--hardware", "h100-sxm", "--set", "users=100", "--set", "s=4096", "--set", "tps_target=30")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "n_min = Max(n_mem, n_tps)" in text and "= 4" in text
    assert "answer: 4 device(s); binding constraint: memory" in text
    assert "n_mem = ceiling(M_need/M_dev)" in text and "272,171,024,384" in text
    assert "at n = 3:" in text and "DOES NOT FIT" in text
    out = run_cli("show", "serving.min_gpus", *TEXTBOOK_ARGS, "--lenient", "--model", "llama-2-70b",
                  "--hardware", "h100-sxm", "--set", "users=100", "--set", "s=4096", "--set", "tps_target=30",
                  "--format", "json")
    data = json.loads(out.stdout)
    assert data["value"] == 4 and data["unit"] == "1" and data["binding"] == "memory"


def test_more_devices_than_kv_heads():
    # 450 users: 604 GB of KV → split over ≤ 8 cards would need 8.64 cards, so beyond g = 8 each card keeps
    # KV/8 = 75.5 GB and 80 GiB − 75.5 GB = 10,401,873,920 B is left for weights: ceil(W/that) = 14
    kv = 450 * KV70_SEQ
    free = 80 * GiB - Fr(kv, 8)
    assert free == 10_401_873_920
    assert api.value("serving.min_gpus", users=450, s=4096, **H100) == math.ceil(Fr(W70) / free) == 14


def test_cannot_fit_any_number_of_cards():
    # per-card limit M_dev = 1 GB: beyond 8 cards each still holds KV/8 = 134.2e9/8 = 16.8 GB > 1 GB
    with pytest.raises(Infeasible, match="does not fit on any number of devices"):
        api.value("serving.min_gpus", users=100, s=4096, M_dev="1GB", **H100)
    out = run_cli("show", "serving.min_gpus", *TEXTBOOK_ARGS, "--model", "llama-2-70b", "--hardware", "h100-sxm",
                  "--set", "users=1000", "--set", "s=32768")
    assert out.returncode == 2 and "does not fit on any number of devices" in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_group_size_limit_and_unreachable_speed():
    out = run_cli("show", "serving.min_gpus", *TEXTBOOK_ARGS, "--model", "llama-2-70b", "--hardware", "h100-sxm",
                  "--set", "users=100", "--set", "s=4096", "--set", "n_max=2")
    assert out.returncode == 2 and "n_max = 2" in out.stderr and "needs 4" in out.stderr
    # 300 token/s each for 400 users: every card still reads KV/8 = 68.7 GB per step = 20 ms > 3.3 ms
    with pytest.raises(Infeasible, match="no number of devices reaches tps_target"):
        api.value("serving.min_gpus", users=400, s=4096, tps_target=300, **H100)


def test_overhead_reserve():
    # 70 GiB usable: 272,171,024,384 / 75,161,927,680 = 3.62 → 4; 60 GiB: /64,424,509,440 = 4.22 → 5
    assert api.value("serving.min_gpus", users=100, s=4096, M_ovh="10GiB", **H100) == 4
    assert api.value("serving.min_gpus", users=100, s=4096, M_ovh="20GiB", **H100) == 5


def test_max_users_tp_and_never_negative():
    # 4 H100s: floor((4·85,899,345,920 − 137,953,296,384) / 1,342,177,280) = floor(153.2) = 153
    assert api.value("serving.max_users", s=4096, n_dev=4, **H100) == (4 * 80 * GiB - W70) // KV70_SEQ == 153
    # 2 cards at s = 131,072: one user's cache (42.9 GB) exceeds the 33.8 GB left → 0, not negative
    assert api.value("serving.max_users", s=131072, n_dev=2, **H100) == 0
    # one card: the weights alone do not fit
    with pytest.raises(Infeasible, match="does not fit"):
        api.value("serving.max_users", s=4096, **H100)
    out = run_cli("show", "serving.max_users", "--model", "llama-2-70b", "--hardware", "h100", "--set", "s=4096")
    assert out.returncode == 2 and "does not fit" in out.stderr and "at least 2 devices" in out.stderr


def test_max_users_matches_single_device_kv_budget():
    # LLaMA 2 7B on one H100 at 4096 with the whole card (mem_util = 1, kv_cache.max_users' textbook budget):
    # floor((85,899,345,920 − 13,476,831,232) / 2,147,483,648) = floor(33.7) = 33
    v = api.value("serving.max_users", model="llama-2-7b", hardware="h100-sxm", s=4096, mem_util=1)
    assert v == 33 == api.value("kv_cache.max_users", model="llama-2-7b", hardware="h100-sxm", s=4096)
    # serving keeps decode's runtime reserve by default: 0.9 × 85,899,345,920 = 77,309,411,328;
    # floor((77,309,411,328 − 13,476,831,232) / 2,147,483,648) = floor(29.7) = 29
    assert api.value("serving.max_users", model="llama-2-7b", hardware="h100-sxm", s=4096) == 29


def test_memory_per_device_tp_split():
    # 4 cards: 272,171,024,384 / 4 = 68,042,756,096 B each (79.2% of 80 GiB)
    assert api.value("serving.memory_per_device", users=100, s=4096, n_dev=4, **H100) == 68_042_756_096
    # 16 cards, 8 KV heads: W/16 + KV/8
    v = api.value("serving.memory_per_device", users=100, s=4096, n_dev=16, **H100)
    assert v == sp.Rational(W70, 16) + sp.Rational(100 * KV70_SEQ, 8)


def test_ex_8_4_largest_int4_model_in_3gb():
    # 3e9 B / 0.5 B per weight = 6e9 parameters (decimal GB, the whole memory, as the seed writes)
    assert api.value("serving.max_params", options={"dtype": "int4"}, M_dev="3GB", mem_util=1) == 6 * 10**9
    # with the default runtime reserve: 0.9 × 3e9 / 0.5 = 5.4e9
    assert api.value("serving.max_params", options={"dtype": "int4"}, M_dev="3GB") == 54 * 10**8
    # on the phone's 6 GiB: 6·2^30 / 0.5 = 12,884,901,888 whole; with the reserve 0.9 × that = 11,596,411,699.2,
    # floored to whole parameters: 11,596,411,699
    assert api.value("serving.max_params", options={"dtype": "int4"}, hardware="phone", mem_util=1) == 12 * GiB
    assert api.value("serving.max_params", options={"dtype": "int4"}, hardware="phone") == 108 * GiB // 10


# ---- the engine's default plan: valid tensor-parallel degrees × data-parallel replicas --------------------

PLAN = dict(model="llama-2-70b", hardware="h100-sxm", s=4096)


def test_min_gpus_proposes_valid_degrees_and_replicas():
    # memory only, 100 users: a device may hold 0.9 × 80 GiB = 77.31 GB; tp 2 needs 137.95/2 + 134.2/2 = 136.1 GB,
    # tp 4 needs 34.49 + 33.55 = 68.04 GB: 4 devices (a power of two dividing the 64 query heads)
    d = api.show("serving.min_gpus", users=100, **PLAN)
    assert d.value == 4 and d.extra["tp"] == 4 and d.extra["replicas"] == 1
    # 1000 users at 30 token/s each: tp 8 holds 17.24 GB of weights + 125 users' caches per 77.31 GB device at most,
    # so 3 replicas of 334 users (73.28 GB each); their step (21.9 ms of reads + 7.9 ms of all-reduces) meets 30/s
    d = api.show("serving.min_gpus", users=1000, tps_target=30, **PLAN)
    assert (d.value, d.extra["tp"], d.extra["replicas"], d.extra["users_per_replica"]) == (24, 8, 3, 334)


def test_min_gpus_never_proposes_a_degree_that_does_not_divide_the_heads():
    from derive import presets
    from derive.layers.stack import heads

    for p in presets.models().values():
        ctx = api.context(model=p.id)
        hv = heads(ctx.arch)
        if hv is None or p.id.startswith(("bert", "t5")):
            continue
        for users in (1, 37, 500):
            try:
                d = api.show("serving.min_gpus", model=p.id, hardware="h100-sxm", s=2048, users=users)
            except Infeasible:
                continue
            tp = d.extra["tp"]
            assert hv[0] % tp == 0 and tp & (tp - 1) == 0, (p.id, users, tp)


def test_min_gpus_without_a_context_length_asks_for_it():
    # the search evaluates the memory per device at each (tp, b): s left free was a TypeError (exit 70)
    out = run_cli("show", "serving.min_gpus", "--model", "llama-2-7b", "--hardware", "h100-sxm", "--set", "users=10")
    assert out.returncode == 2 and "the memory per device still depends on s: give a value with --set" in out.stderr
