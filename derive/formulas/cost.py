"""Cost of serving: dollars per hour, per token and per million tokens.

Cost per token is what the devices cost per second over the tokens they deliver per second. The
throughput is the decode roofline's aggregate tokens/s unless the user states what the deployment
actually serves (``--set tps_total=50e6token/day``), as the seed workbook does.
"""

from __future__ import annotations

import sympy as sp

from derive import symbols as S
from derive.formulas import throughput as T
from derive.quantity import Quantity, leaf, node
from derive.registry import Context, quantity

tps_total = S.define("tps_total", r"R_{\mathrm{served}}", "token/s",
                     "tokens per second a deployment serves in total (e.g. --set tps_total=50e6token/day)",
                     integer=False)


def per_hour(ctx: Context) -> Quantity:
    n = T.devices(ctx)
    return leaf("cost.per_hour", "price of the deployment per unit time: n_dev × price per device", "USD/s",
                n * S.price, symbol="c_dep", latex=r"c_{\mathrm{dep}}")


def per_token(ctx: Context) -> Quantity:
    rate = per_hour(ctx)
    if T.given(ctx, tps_total):
        expr = rate.symbol / tps_total
        children: tuple[Quantity, ...] = (rate,)
        note = "throughput as served (tps_total), not the roofline's"
    else:
        from derive.registry import build

        agg = build("decode.tokens_per_second_aggregate", ctx)
        expr = rate.symbol / agg.symbol
        children = (rate, agg)
        note = "throughput from the decode roofline at batch b (every device busy all the time)"
    q = node("cost.per_token", "cost per generated token: deployment price per second / tokens per second",
             "USD/token", expr=expr, children=children, symbol="c_tok", latex=r"c_{\mathrm{tok}}", note=note)
    return T.collect_conventions(q, ("prefill, idle time and redundancy are not priced in",))


def _extras(ctx: Context, q: Quantity, value) -> dict:
    lines = []
    if value is not None and not sp.sympify(value).free_symbols and q.id == "cost.per_hour":
        lines.append(f"= ${float(value * 3600):.4g} per hour = ${float(value * 86400):.4g} per day")
    elif value is not None and not sp.sympify(value).free_symbols:
        per = value if q.id == "cost.per_token" else value / 10**6
        lines.append(f"= ${float(per):.4g} per token = ${float(per * 10**6):.4g} per 1M tokens")
    return {"lines": lines + T.hardware_lines(ctx)}


def _decode_fit(ctx: Context):
    """The decode step's fit check when the tokens come from its roofline: a price per token of a model that does
    not fit is no price. None when the user states the served throughput (tps_total)."""
    return None if T.given(ctx, tps_total) else T.decode_fit(ctx)


def _check_fits(ctx: Context, q: Quantity | None = None) -> None:
    T.verdict(ctx, _decode_fit(ctx))


@quantity("cost.per_hour", "price of the deployment: n_dev × price per device-hour", "USD/s", extras=_extras)
def _per_hour(ctx: Context) -> Quantity:
    return per_hour(ctx)


@quantity("cost.per_token", "cost per generated token from price per hour and throughput", "USD/token",
          extras=_extras, check=_check_fits, fit=_decode_fit)
def _per_token(ctx: Context) -> Quantity:
    return per_token(ctx)


@quantity("cost.per_million_tokens", "cost per 1,000,000 generated tokens (USD)", "USD", extras=_extras,
          check=_check_fits, fit=_decode_fit)
def _per_million(ctx: Context) -> Quantity:
    t = per_token(ctx)
    q = node("cost.per_million_tokens", "cost of one million tokens", "USD", [(10**6, t)], symbol="c_M",
             latex=r"c_{\mathrm{1M}}")
    return T.collect_conventions(q)
