"""No silent ignoring: an input the asked quantity does not read is refused, naming the quantities that read it.

"Largest batch for Llama 2 7B on 8 H100s at 8K" asked as `kv_cache.max_batch --set n_dev=8` used to answer for
one device without a word. Now `derive show` exits 2 and names `serving.max_users`, which spreads the weights
and caches over n_dev devices; `--lenient` (the API's default, ``unread="note"``) turns it into a note.

Run: python examples/no_silent_ignoring.py
"""

from __future__ import annotations

from derive import api
from derive.errors import DeriveError

ASK = dict(model="llama-2-7b", hardware="h100-sxm", s=8192, n_dev=8)


def main() -> None:
    try:
        api.value("kv_cache.max_batch", api.request(unread="error", **ASK))
    except DeriveError as exc:
        print(f"refused: {str(exc)[:160]}…")
    one = api.show("kv_cache.max_batch", **ASK)  # the API's default: the number, with a note
    print(f"kv_cache.max_batch (one device): {int(one.value)}; note: {one.notes[-1][:80]}…")
    users = api.value("serving.max_users", **ASK)
    print(f"serving.max_users on 8 devices: {int(users)}")


if __name__ == "__main__":
    main()
