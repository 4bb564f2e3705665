"""Call cost from token usage and an endpoint's prices per million input/output tokens."""

from __future__ import annotations

from decimal import Decimal

from providers.types import EndpointConfig, Usage

MILLION = Decimal(1_000_000)
COST_QUANTUM = Decimal("0.00000001")  # 1e-8 USD: exact for any realistic per-call cost


def cost_of_usage(
    usage: Usage,
    *,
    price_input_per_million: Decimal | None,
    price_output_per_million: Decimal | None,
) -> Decimal | None:
    """Cost in the prices' currency, or ``None`` when the endpoint has no prices (unknown is not 0)."""
    if price_input_per_million is None and price_output_per_million is None:
        return None
    total = (
        Decimal(usage.input_tokens) * Decimal(price_input_per_million or 0)
        + Decimal(usage.output_tokens) * Decimal(price_output_per_million or 0)
    ) / MILLION
    return total.quantize(COST_QUANTUM)


def cost_for_endpoint(usage: Usage, endpoint: EndpointConfig) -> Decimal | None:
    return cost_of_usage(
        usage,
        price_input_per_million=endpoint.price_input_per_million,
        price_output_per_million=endpoint.price_output_per_million,
    )
