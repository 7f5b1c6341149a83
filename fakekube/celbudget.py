"""The apiserver's budgets for the estimated cost of a CRD's rules, and its messages when a rule,
a messageExpression or a whole schema is over budget."""

from __future__ import annotations

from dataclasses import dataclass

from .celcost import U64
from .errors import FieldError

PER_EXPRESSION_LIMIT = 10_000_000  # StaticEstimatedCostLimit
CRD_LIMIT = 100_000_000  # StaticEstimatedCRDCostLimit, for all rules of one version's schema
_MOST_EXPENSIVE = 4
_WHOLE_SCHEMA = "x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema"
CONTRIBUTED = (
    "contributed to estimated rule cost total exceeding cost limit for entire OpenAPIv3 schema"
)


def times_cardinality(cost: int, cardinality: int) -> int:
    """A rule's cost times how often it may run, saturating."""
    return min(cost * cardinality, U64)


def over_budget(cost_name: str, cost: int, limit: int) -> str:
    """``getCostErrorMessage``."""
    factor = cost / limit
    if factor > 100:
        shown = "more than 100x"  # quadratic or worse: the exact figure says nothing more
    elif factor < 1.5:
        shown = f"{factor:f}x"  # not "1.0x"
    else:
        shown = f"{factor:.1f}x"
    return (
        f"{cost_name} exceeds budget by factor of {shown} (try simplifying the rule, or adding "
        "maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)"
    )


@dataclass
class TotalCost:
    """The cost of all of a schema's rules and messageExpressions, and the few that weigh most."""

    total: int = 0
    most_expensive: list[tuple[str, int]] | None = None

    def observe(self, path: str, cost: int) -> None:
        self.total = min(self.total + cost, U64)
        if cost < CRD_LIMIT // 100:  # under 1% of the limit: not worth naming
            return
        ranked = [*(self.most_expensive or []), (path, cost)]
        ranked.sort(key=lambda item: item[1], reverse=True)
        self.most_expensive = ranked[:_MOST_EXPENSIVE]

    def errors(self, schema_path: str) -> list[FieldError]:
        """When the total exceeds the CRD limit: the rules that contributed most, then the
        schema itself."""
        if self.total <= CRD_LIMIT:
            return []
        named = [FieldError.forbidden(path, CONTRIBUTED) for path, _ in self.most_expensive or ()]
        total = over_budget(_WHOLE_SCHEMA, self.total, CRD_LIMIT)
        return [*named, FieldError.forbidden(schema_path, total)]
