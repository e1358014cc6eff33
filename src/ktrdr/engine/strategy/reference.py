"""The strategy file reference (docs/strategies.md), generated from the code so it cannot
drift: the schema's fields, defaults and limits, every indicator with its parameters and
outputs, the fuzzy shapes, the rule grammar. Regenerate with
``python -m ktrdr.engine.strategy.reference > docs/strategies.md`` (a test compares)."""

from __future__ import annotations

import types
import typing
from typing import Any

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from ktrdr.engine.indicators.registry import INDICATORS
from ktrdr.engine.strategy import rules
from ktrdr.engine.strategy import schema as s
from ktrdr.engine.timeframes import TIMEFRAMES

_BOUNDS = (
    (annotated_types.Ge, "ge", "≥"), (annotated_types.Gt, "gt", ">"),
    (annotated_types.Le, "le", "≤"), (annotated_types.Lt, "lt", "<"),
    (annotated_types.MinLen, "min_length", "min length"),
    (annotated_types.MaxLen, "max_length", "max length"),
)  # fmt: skip


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args if a is not type(None))
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (list, dict):
        return f"{origin.__name__} of {', '.join(_type_name(a) for a in args)}"
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _limits(info: FieldInfo) -> str:
    out = []
    for item in info.metadata:
        for kind, attr, sign in _BOUNDS:
            if isinstance(item, kind):
                out.append(f"{sign} {getattr(item, attr)}")
        pattern = getattr(item, "pattern", None)
        if pattern:
            out.append(f"matches `{pattern}`")
    return ", ".join(out)


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        made = info.default_factory()  # type: ignore[call-arg]
        return "the section's defaults" if isinstance(made, BaseModel) else f"`{made}`"
    if info.default is PydanticUndefined:
        return "required"
    if isinstance(info.default, BaseModel):
        return "the section's defaults"
    return f"`{info.default}`" if info.default is not None else "none"


def fields_table(model: type[BaseModel]) -> str:
    """A Markdown table of a schema model's fields."""
    lines = ["| key | type | default | limits | what |", "|---|---|---|---|---|"]
    for name, info in model.model_fields.items():
        what = (info.description or "").replace("|", "\\|")
        lines.append(
            f"| `{name}` | {_type_name(info.annotation)} | {_default(info)} | "
            f"{_limits(info)} | {what} |"
        )
    return "\n".join(lines)


def _section(model: type[BaseModel], title: str, text: str = "") -> str:
    doc = (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else ""
    intro = " ".join(x for x in (doc, text) if x)
    anchor = f'<a id="{model.__name__.lower()}"></a>'
    return f"### {title}\n{anchor}\n\n{intro}\n\n{fields_table(model)}\n".replace("\n\n\n", "\n\n")


def indicators_section() -> str:
    parts = []
    for name, spec in INDICATORS.items():
        params = spec.params_model.model_fields
        rows = [
            f"| `{p}` | {_type_name(i.annotation)} | {_default(i)} | {_limits(i)} |"
            for p, i in params.items()
        ]
        table = (
            "| parameter | type | default | limits |\n|---|---|---|---|\n" + "\n".join(rows)
            if rows
            else "no parameters"
        )
        outputs = ", ".join(f"`<id>.{o}`" for o in spec.outputs)
        parts.append(
            f"#### `{name}` — {spec.description}\n\n{table}\n\nOutputs: {outputs}; `<id>` alone "
            f"is `<id>.{spec.primary_output}`.\n"
        )
    return "\n".join(parts)


def shapes_section() -> str:
    lines = ["| shape | points |", "|---|---|"]
    lines += [f"| `{shape}` | {n}: `{form}` |" for shape, (n, form) in s.SHAPE_POINTS.items()]
    return "\n".join(lines)


HEADER = """# Strategy files: the reference

<!-- Generated from the code by `python -m ktrdr.engine.strategy.reference`; do not edit.
     tests/engine/test_reference.py fails when this file and the code disagree. -->

A strategy is a YAML file: **data** (symbol, timeframe) → **indicators** → **fuzzy sets**
over indicator outputs → **decisions** (signal rules, a fuzzy rule base, or a trained
model) → **costs**, **position sizing** and **position mode**. Unknown keys, indicators and
parameters are errors with a "did you mean …?". Check a file with
`ktrdr strategy validate FILE` (every problem at once), and see why it trades with
`ktrdr strategy explain FILE --symbol S --at DATE` or
`ktrdr backtest run FILE --debug-frames out.parquet`. Any value can be changed for one run
with `--set PATH=VALUE` (paths like `indicators.<id>.params.<name>`, `costs.commission`).

Timeframes: {timeframes}.
"""

GRAMMAR = """## Fuzzy rules

`{form}`

* `IS <set>` is the membership degree μ of the variable's value in the set (0…1);
  `IS NOT <set>` is 1 − μ.
* `AND` takes the minimum of its conditions, `OR` the maximum; one rule uses one of them
  (split mixed rules: rules for the same action combine like OR, by maximum).
* A rule's strength is that degree times its `weight` (default 1, in (0, 1]).
* On each bar's close the action with the highest strength is taken when it reaches
  `fuzzy_rules.threshold` and is strictly above every other action's; otherwise nothing is
  done and the position is kept. A bar whose inputs are missing (indicator warm-up) fires 0.
* The decision fills at the next bar's open.

## Actions and position modes

| action | `long_only` | `long_short` |
|---|---|---|
| `BUY` | go long (stay long) | go long (closing a short) |
| `SELL` | go flat | go short (closing a long) |
| `CLOSE` | go flat | go flat |
| no action | keep the position | keep the position |

Signal rules: a `crossover` gives `BUY` when `fast` crosses above `slow` and `SELL` when it
crosses below; a `threshold` gives its `action` while `input` is above `above` (or below
`below`). Two different actions on the same bar cancel out.

A trained model (`decisions.model`) predicts SELL / HOLD / BUY from the fuzzy memberships
(`<variable>.<set>`, in file order); it acts when the predicted class's probability is at
least `min_confidence` (HOLD keeps the position). By default the newest version of the model
that beats its baseline is used; pin one with `version`. A model trained on another symbol or
timeframe is refused unless `allow_other_symbols: true`.
"""


VALIDATION = (
    "With `method: purged_kfold` the training result gains `cross_validation`: per fold its "
    "rows (train, test, purged, embargoed), loss, accuracy, the majority-class baseline and "
    "the class balance of its train and test rows, then their mean and spread. Label windows "
    "are counted in rows from the longest label look-ahead (at least as wide as each label's "
    "own window, so the purge errs on the safe side). Example: "
    "`validation: {method: purged_kfold, folds: 5, embargo: 12}`."
)


def render() -> str:
    """The whole reference as Markdown."""
    parts = [
        HEADER.format(timeframes=", ".join(f"`{t}`" for t in TIMEFRAMES)),
        "## Top-level keys\n",
        fields_table(s.Strategy),
        "\n## Sections\n",
        _section(s.DataSpec, "data"),
        _section(s.IndicatorConfig, "indicators (a list)",
                 "Each item names an indicator `type` with its `params` (below)."),
        _section(s.FuzzyVariableConfig, "fuzzy_sets.<variable>",
                 "A fuzzy variable over one input; its sets are named shapes."),
        _section(s.FuzzySetConfig, "fuzzy_sets.<variable>.sets.<set>"),
        _section(s.DecisionsConfig, "decisions", "Exactly one of the three."),
        _section(s.SignalRuleConfig, "decisions.signals (a list)"),
        _section(s.CrossoverConfig, "crossover"),
        _section(s.ThresholdConfig, "threshold"),
        _section(s.FuzzyRulesConfig, "decisions.fuzzy_rules",
                 "Rules are strings or `{rule: ..., weight: ...}`."),
        _section(s.WeightedRule, "a weighted rule"),
        _section(s.ModelDecisionConfig, "decisions.model"),
        _section(s.TrainingConfig, "training"),
        _section(s.ValidationConfig, "training.validation", VALIDATION),
        _section(s.CostsConfig, "costs", "Fractions, charged on both sides of each trade."),
        _section(s.PositionSizingConfig, "position_sizing"),
        _section(s.ExitsConfig, "exits", "Stops, checked on each bar's high and low."),
        _section(s.PriceDistance, "a stop distance"),
        _section(s.SearchConfig, "search", "Parameter spaces for sweeps (docs/campaigns.md)."),
        "## Fuzzy shapes\n",
        shapes_section(),
        "\n" + GRAMMAR.format(form=rules._FORM.removeprefix("write rules as: ")),
        "## Indicators\n",
        "Refer to an output as `<id>.<output>` (e.g. `bb.percent_b`, `macd.histogram`) in "
        "fuzzy set inputs, signal rules and thresholds; `<id>` alone is the first output.\n",
        indicators_section(),
    ]  # fmt: skip
    return "\n".join(parts).rstrip() + "\n"


if __name__ == "__main__":
    import sys

    sys.stdout.write(render())
