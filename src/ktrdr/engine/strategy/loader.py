"""Load and validate strategy files; every problem is reported at once, each with a fix."""

from __future__ import annotations

import types
import typing
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from ktrdr.engine.errors import StrategyError
from ktrdr.engine.indicators.registry import Params, get_indicator, parse_params
from ktrdr.engine.strategy.rules import ParsedRule, RuleSyntaxError, parse_rule
from ktrdr.engine.strategy.schema import Strategy
from ktrdr.engine.timeframes import did_you_mean

PRICE_COLUMNS = ("open", "high", "low", "close", "volume")
# libyaml's safe loader where PyYAML was built with it: the same documents, and errors at
# the same places (some worded differently), as the pure-Python one, about 8x faster. A
# campaign's strategy text is parsed at submission, when the backend plans it and in each
# chunk, so this was a visible part of a sweep's start.
_SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    """YAML text as Python values (safe: no tags that build objects)."""
    return yaml.load(text, Loader=_SAFE_LOADER)


def load_strategy(path_or_text: str | Path) -> Strategy:
    """Load a strategy from a file path, a packaged example's name, or YAML text."""
    if isinstance(path_or_text, Path):
        return validate_strategy_text(path_or_text.read_text(encoding="utf-8"))
    text = path_or_text
    if "\n" not in text and text.strip().endswith((".yaml", ".yml")):
        path = Path(text.strip())
        if not path.is_file():
            raise StrategyError([f"strategy file {text!r} not found; check the path"])
        return validate_strategy_text(path.read_text(encoding="utf-8"))
    if "\n" not in text and ":" not in text:
        names = builtin_strategy_names()
        if text in names:
            return validate_strategy_text(builtin_strategy_text(text))
        raise StrategyError(
            [
                f"no strategy file or example named {text!r}{did_you_mean(text, names)}; "
                f"give a path to a .yaml file or one of: {', '.join(names)}"
            ]
        )
    return validate_strategy_text(text)


def builtin_strategy_names() -> list[str]:
    """Names of the example strategies packaged with ktrdr."""
    folder = resources.files("ktrdr") / "strategies"
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def builtin_strategy_text(name: str) -> str:
    return (resources.files("ktrdr") / "strategies" / f"{name}.yaml").read_text(encoding="utf-8")


def validate_strategy_text(text: str) -> Strategy:
    """Parse and validate YAML text; raise one StrategyError listing every problem."""
    try:
        raw = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise StrategyError(
            [
                f"not valid YAML{where}: {getattr(exc, 'problem', exc)}; "
                "check indentation and quoting"
            ]
        ) from None
    return validate_strategy_mapping(raw)


def validate_strategy_mapping(raw: Any) -> Strategy:
    """Validate a parsed strategy document (the YAML's mapping) exactly like a file."""
    if not isinstance(raw, dict):
        raise StrategyError(
            [
                "a strategy file must be a YAML mapping with keys like "
                "name, data, indicators, decisions"
            ]
        )
    problems: list[str] = []
    strategy: Strategy | None = None
    try:
        strategy = Strategy.model_validate(raw)
    except ValidationError as exc:
        problems += _describe_all(exc.errors(), raw)
    params, rules, ref_problems = _check_references(raw)
    problems += ref_problems
    if problems or strategy is None:
        raise StrategyError(problems)
    strategy._params = params
    strategy._rules = rules
    return strategy


# ---- pydantic errors -> actionable messages -------------------------------------------


def _describe_all(errors: list[Any], raw: dict[str, Any]) -> list[str]:
    # A value that fits no member of a union (a rule given as text or as a mapping)
    # yields one error per member; the "should be a valid string" one is noise when the
    # user clearly wrote a mapping, so keep the others.
    prefixes = {tuple(e["loc"][:-1]) for e in errors if e["type"] != "string_type"}
    kept = [
        e
        for e in errors
        if not (
            e["type"] == "string_type"
            and e["loc"][-1] == "str"
            and any(p[: len(e["loc"]) - 1] == tuple(e["loc"][:-1]) for p in prefixes)
        )
    ]
    return list(dict.fromkeys(_describe(e, raw) for e in kept))


def _describe(err: Any, raw: dict[str, Any]) -> str:
    loc = tuple(err["loc"])
    where = _where(loc[:-1] if err["type"] == "extra_forbidden" else loc, raw)
    if err["type"] == "extra_forbidden":
        key = str(loc[-1])
        allowed = _allowed_keys(Strategy, loc[:-1])
        hint = did_you_mean(key, allowed)
        return f"{where}: unknown key {key!r}{hint}; allowed keys: {', '.join(allowed)}"
    if err["type"] == "missing":
        return f"{where}: required key is missing; add it"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {msg}"


def _where(loc: tuple[Any, ...], raw: dict[str, Any]) -> str:
    """'indicators[0] (id sma_fast).params' style path, naming indicators by id when known."""
    out = ""
    node: Any = raw
    for part in loc:
        if _is_union_tag(part):
            continue
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("id"), str):
                out += f" (id {node['id']})"
        else:
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out or "strategy"


def _is_union_tag(part: Any) -> bool:
    """pydantic puts the union member's name (a class name or 'str') into ``loc``."""
    return isinstance(part, str) and (part[:1].isupper() or part in ("str", "float", "int"))


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the model found by walking ``loc`` from ``model``."""
    current: Any = model
    for part in loc:
        current = _step(current, part)
        if current is None:
            return []
    models = _models_in(current)
    return list(models[0].model_fields) if models else []


def _step(annotation: Any, part: Any) -> Any:
    for m in _models_in(annotation):
        if isinstance(part, str) and part in m.model_fields:
            return m.model_fields[part].annotation
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        for a in args:
            found = _step(a, part)
            if found is not None:
                return found
        return None
    if origin is list and args:
        return args[0] if isinstance(part, int) else None
    if origin is dict and len(args) == 2:
        return args[1]
    # pydantic names union members in loc (e.g. 'WeightedRule'); stay on the same node.
    return annotation if isinstance(part, str) and _models_in(annotation) else None


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [m for a in typing.get_args(annotation) for m in _models_in(a)]
    return []


# ---- cross-references: indicator names and params, inputs, rule variables and sets ----
# These run on the raw mapping, so they report even when the structure check failed too.


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _check_indicators(
    raw: dict[str, Any], opaque: set[str]
) -> tuple[dict[str, Params], list[str], list[str]]:
    """Params per indicator id, every valid reference name, and the problems found.
    Ids of unknown indicator types go into ``opaque`` (their outputs can't be checked)."""
    problems: list[str] = []
    params: dict[str, Params] = {}
    refs: list[str] = list(PRICE_COLUMNS)
    for i, ind in enumerate(_items(raw.get("indicators"))):
        ind = _mapping(ind)
        ind_id, ind_type = ind.get("id"), ind.get("type")
        if not isinstance(ind_id, str) or not isinstance(ind_type, str):
            continue  # the structure check reports it
        label = f"indicators[{i}] (id {ind_id})"
        if ind_id in refs:
            problems.append(
                f"{label}: id {ind_id!r} is used twice (or is a price column); "
                "give each indicator its own id"
            )
            continue
        try:
            spec = get_indicator(ind_type)
        except ValueError as exc:
            problems.append(f"{label}: {exc}")
            # Keep the id known so references to it don't pile up follow-on errors.
            refs.append(ind_id)
            opaque.add(ind_id)
            continue
        parsed, errs = parse_params(spec, _mapping(ind.get("params")))
        problems += [f"{label}: {e}" for e in errs]
        if parsed is not None:
            params[ind_id] = parsed
        refs += [ind_id] + [f"{ind_id}.{o}" for o in spec.outputs]
    return params, refs, problems


def _check_references(raw: dict[str, Any]) -> tuple[dict[str, Params], list[ParsedRule], list[str]]:
    opaque: set[str] = set()
    params, refs, problems = _check_indicators(raw, opaque)
    known = set(refs)

    def check_ref(ref: Any, where: str) -> None:
        if isinstance(ref, str) and ref not in known and ref.split(".")[0] not in opaque:
            problems.append(
                f"{where}: {ref!r} is not an indicator output"
                f"{did_you_mean(ref, refs)}; use an indicator id, "
                "id.output (e.g. macd.signal) or a price column"
            )

    fuzzy = {k: _mapping(v) for k, v in _mapping(raw.get("fuzzy_sets")).items()}
    for var, cfg in fuzzy.items():
        check_ref(cfg.get("input"), f"fuzzy_sets.{var}.input")
    decisions = _mapping(raw.get("decisions"))
    for i, sig in enumerate(_items(decisions.get("signals"))):
        cross, thresh = (
            _mapping(_mapping(sig).get("crossover")),
            _mapping(_mapping(sig).get("threshold")),
        )
        for key in ("fast", "slow"):
            check_ref(cross.get(key), f"decisions.signals[{i}].crossover.{key}")
        check_ref(thresh.get("input"), f"decisions.signals[{i}].threshold.input")
    rules: list[ParsedRule] = []
    sets = {var: tuple(_mapping(cfg.get("sets"))) for var, cfg in fuzzy.items()}
    for i, item in enumerate(_items(_mapping(decisions.get("fuzzy_rules")).get("rules"))):
        rule, errs = _parse_rule(item, sets, f"decisions.fuzzy_rules.rules[{i}]")
        problems += errs
        if rule is not None:
            rules.append(rule)
    return params, rules, problems


def _parse_rule(
    item: Any, sets: dict[str, tuple[str, ...]], where: str
) -> tuple[ParsedRule | None, list[str]]:
    if isinstance(item, str):
        text, weight = item, 1.0
    else:
        given, weight = _mapping(item).get("rule"), _mapping(item).get("weight", 1.0)
        if not isinstance(given, str) or not isinstance(weight, int | float):
            return None, []  # the structure check reports it
        text = given
    try:
        rule = parse_rule(text, float(weight))
    except RuleSyntaxError as exc:
        return None, [f"{where}: {exc}"]
    problems = []
    variables = tuple(sets)
    for cond in rule.conditions:
        names = sets.get(cond.variable)
        if names is None:
            problems.append(
                f"{where}: unknown fuzzy variable {cond.variable!r}"
                f"{did_you_mean(cond.variable, variables)}; define it under fuzzy_sets "
                f"(defined: {', '.join(variables) or 'none'})"
            )
        elif cond.fuzzy_set not in names:
            problems.append(
                f"{where}: fuzzy variable {cond.variable!r} has no set {cond.fuzzy_set!r}"
                f"{did_you_mean(cond.fuzzy_set, names)}; its sets are: {', '.join(names)}"
            )
    return (rule if not problems else None), problems
