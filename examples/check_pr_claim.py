"""A PR says its new model is "125M parameters". Check the claim from its config.json.

Run: python examples/check_pr_claim.py [path/to/config.json]
With no argument it writes the config of the PR under review (a GPT-2-small-shaped model with a
larger vocabulary) to a temporary folder and checks that.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from derive import api
from derive.reports import render

CLAIM = 125_000_000

PR_CONFIG = {  # what the PR adds: GPT-2 small, but with a 64K vocabulary and 2K context
    "model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "n_positions": 2048,
    "vocab_size": 65536, "n_inner": None, "tie_word_embeddings": True,
}


def main() -> None:
    if len(sys.argv) > 1:
        path = Path(sys.argv[1])
    else:
        path = Path(tempfile.mkdtemp()) / "config.json"
        path.write_text(json.dumps(PR_CONFIG))
    d = api.show("params.total", hf_config=str(path))
    print(render(d, "text"))
    total = int(d.value)
    off = (total - CLAIM) / CLAIM
    approx = api.value("params.approx", hf_config=str(path))
    print(f"claimed: {CLAIM:,}  exact: {total:,}  ({off:+.2%})")
    print(f"12·L·d² + V·d would say {int(approx):,} ({float((approx - total) / total):+.2%} from the exact count)")
    verdict = "holds" if abs(off) < 0.05 else "does not hold"
    print(f"answer: the '125M' claim {verdict}: the model has {d.human}")


if __name__ == "__main__":
    main()
