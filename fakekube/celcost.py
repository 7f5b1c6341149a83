"""The static cost of CEL expressions, estimated as the apiextensions apiserver estimates it.

When a CRD is written, the apiserver refuses any ``x-kubernetes-validations`` rule whose
worst-case cost exceeds a budget, before any custom resource exists: cel-go's static cost
estimator walks the checked expression, and Kubernetes tells it how large each value reachable
from ``self`` can be (from maxLength, maxItems and maxProperties, else whatever fits in one
request; see ``celdecl``) and what its own library functions cost.

Costs and sizes are ranges ``(min, max)`` of unsigned 64-bit integers that saturate instead of
overflowing, as cel-go's are; the apiserver compares the max with its limits. The walk follows
cel-go's, quirks included: a comprehension over a list the expression builds (``[x].all(p, ...)``)
looks its variable's size up at the rule's own schema node, where an object has size 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from . import celast as ast
from .celcheck import Checked, check
from .celdecl import SCALAR_KINDS, DeclType

U64 = 2**64 - 1
Range = tuple[int, int]
UNKNOWN: Range = (0, U64)

# cel-go's cost constants.
_SELECT_AND_IDENT = 1
_LIST_CREATE = 10
_MAP_CREATE = 30
_STRUCT_CREATE = 40
_STRING_TRAVERSAL = 0.1
_REGEX_LENGTH = 0.25
_PRESENCE_TEST = 0  # Kubernetes' environment makes has() free
_ACCUMULATORS = (ast.ACCUMULATOR, "__result__")


def _add(a: int, b: int) -> int:
    return min(a + b, U64)


def _mul(a: int, b: int) -> int:
    return min(a * b, U64)


def _by_factor(x: int, factor: float) -> int:
    value = float(x)
    if value > 0 and factor > 0 and value > U64 / factor:
        return U64
    result = math.ceil(value * factor)
    return U64 if result >= 2**64 else int(result)


def add(a: Range, b: Range) -> Range:
    return _add(a[0], b[0]), _add(a[1], b[1])


def multiply(a: Range, b: Range) -> Range:
    return _mul(a[0], b[0]), _mul(a[1], b[1])


def by_factor(a: Range, factor: float) -> Range:
    return _by_factor(a[0], factor), _by_factor(a[1], factor)


def union(a: Range, b: Range) -> Range:
    return min(a[0], b[0]), max(a[1], b[1])


def fixed(value: int) -> Range:
    return value, value


@dataclass(frozen=True)
class _Entries:
    """Sizes of a container's keys (indexes, for a list) and values."""

    container: str  # list or map
    key: Range
    value: Range

    def union(self, other: _Entries | None) -> _Entries | None:
        if other is None:
            return None
        return _Entries(self.container, union(self.key, other.key), union(self.value, other.value))


@dataclass
class _LocalVar:
    path: list[str] | None
    size: Range | None
    entries: _Entries | None


@dataclass(frozen=True)
class Node:
    """What an estimator knows of a subexpression: cel-go's ``AstNode``."""

    path: list[str] | None
    type: DeclType
    expr: ast.Expr | None
    computed_size: Range | None


@dataclass(frozen=True)
class _CallEstimate:
    cost: Range
    result_size: Range | None = None


class KubernetesEstimator:
    """Kubernetes' part of the estimate: sizes of values reached from ``self`` (the rule's
    schema node) and costs of Kubernetes' library functions (k8s.io/apiserver's
    ``library.CostEstimator``)."""

    def __init__(self, root: DeclType):
        self.root = root

    def estimate_size(self, node: Node) -> Range | None:
        if not node.path:
            return None
        current: DeclType | None = self.root
        for name in node.path[1:]:  # the first element names the variable, taken to be self
            if current is None:
                return None
            if name in ("@items", "@values"):
                current = current.elem
            elif name == "@keys":
                current = current.key
            else:
                current = current.fields.get(name)
        if current is None:
            return None
        return 0, current.max_elements

    def size(self, node: Node) -> Range:
        if node.computed_size is not None:
            return node.computed_size
        return self.estimate_size(node) or UNKNOWN

    def _element(self, target: Node) -> Node | None:
        if target.type.kind == "list":
            elem = target.type.elem
        elif target.type.kind == "map":
            elem = target.type.key  # a map's first type parameter
        else:
            return None
        path = None if target.path is None else [*target.path, "@items"]
        return Node(path, elem or DeclType("dyn"), None, None)

    def call_cost(
        self, function: str, target: Node | None, args: list[Node]
    ) -> _CallEstimate | None:
        if function in ("isSorted", "sum", "max", "min", "indexOf", "lastIndexOf"):
            if target is None:
                return None
            element = self._element(target)
            if element is None:  # a string's indexOf
                return _CallEstimate(by_factor(self.size(target), _STRING_TRAVERSAL))
            per_element = fixed(1)
            if element.type.kind in ("string", "bytes"):
                per_element = add(per_element, by_factor(self.size(element), _STRING_TRAVERSAL))
            return _CallEstimate(multiply(self.size(target), per_element))
        if function in ("lowerAscii", "upperAscii", "substring", "trim"):
            if target is None:
                return None
            size = self.size(target)
            return _CallEstimate(by_factor(size, _STRING_TRAVERSAL), size)
        if function == "replace":
            if target is None or len(args) < 2:
                return None
            return self._replace(target, args)
        if function == "split":
            if target is None:
                return None
            size = self.size(target)
            longest = size[1]
            limit = args[1].expr if len(args) > 1 else None
            if isinstance(limit, ast.Literal) and limit.kind == "int":
                longest = limit.value % 2**64  # a negative limit wraps, as in Go
            return _CallEstimate(by_factor(size, 2 * _STRING_TRAVERSAL), (0, longest))
        if function == "join":
            if target is None:
                return None
            items = self.size(target)
            element = self._element(target)
            size = multiply(items, self.size(element)) if element is not None else (0, 0)
            if args:
                separators = (max(items[0] - 1, 0), max(items[1] - 1, 0))
                size = add(size, multiply(self.size(args[0]), separators))
            return _CallEstimate(by_factor(size, _STRING_TRAVERSAL), size)
        return None

    def _replace(self, target: Node, args: list[Node]) -> _CallEstimate:
        size = self.size(target)
        old, new = self.size(args[0]), self.size(args[1])
        if old[0] == 0:  # "" matches around every character
            count_max = size[1] + 1 if size[1] < U64 else size[1]
            retained_max = size[1]
        elif new[1] <= old[0]:  # never grows
            count_max, retained_max = 0, size[1]
        else:
            count_max, retained_max = math.ceil(size[1] / old[0]), 0
        if old[1] == 0:
            count_min = size[0] + 1 if size[0] < U64 else size[0]
            retained_min = size[0]
        elif old[1] <= new[0]:  # never shrinks
            count_min, retained_min = 0, size[0]
        else:
            count_min, retained_min = math.ceil(size[0] / old[1]), 0
        result = add(multiply((count_min, count_max), new), (retained_min, retained_max))
        return _CallEstimate(by_factor(size, 2 * _STRING_TRAVERSAL), result)


class _Coster:
    """cel-go's ``coster``: one walk over one expression."""

    def __init__(self, checked: Checked, estimator: KubernetesEstimator):
        self.checked = checked
        self.estimator = estimator
        self.paths: dict[ast.Expr, list[str] | None] = {}
        self.local_vars: dict[str, list[_LocalVar]] = {}
        self.sizes: dict[ast.Expr, Range] = {}
        self.entries: dict[ast.Expr, _Entries] = {}

    # Scopes and paths.

    def _peek(self, name: str) -> _LocalVar | None:
        stack = self.local_vars.get(name)
        return stack[-1] if stack else None

    def _push(self, name: str, var: _LocalVar) -> None:
        self.local_vars.setdefault(name, []).append(var)

    def _pop(self, name: str) -> None:
        self.local_vars[name].pop()

    def _path(self, expr: ast.Expr) -> list[str] | None:
        if isinstance(expr, ast.Ident) and (var := self._peek(expr.name)) is not None:
            return var.path
        return self.paths.get(expr)

    def _type(self, expr: ast.Expr) -> DeclType:
        return self.checked.type_of(expr)

    def _node(self, expr: ast.Expr) -> Node:
        path = self._path(expr)
        if path and path[0] in _ACCUMULATORS:
            path = None  # only paths from variables the estimator knows
        return Node(path, self._type(expr), expr, self._size(expr))

    # Sizes.

    def _size(self, expr: ast.Expr) -> Range | None:
        if expr in self.sizes:
            return self.sizes[expr]
        if (literal := _literal_size(expr)) is not None:
            return literal
        estimated = self.estimator.estimate_size(
            Node(self._path(expr), self._type(expr), expr, None)
        )
        if estimated is not None:
            self.sizes[expr] = estimated
            return estimated
        if self._type(expr).kind in SCALAR_KINDS:
            return fixed(1)
        if isinstance(expr, ast.Ident) and (var := self._peek(expr.name)) is not None:
            return var.size
        return None

    def _size_or_unknown(self, item: ast.Expr | Node) -> Range:
        size = item.computed_size if isinstance(item, Node) else self._size(item)
        return UNKNOWN if size is None else size

    def _entries(self, expr: ast.Expr) -> _Entries | None:
        if expr in self.entries:
            return self.entries[expr]
        if isinstance(expr, ast.Ident) and (var := self._peek(expr.name)) is not None:
            return var.entries
        return None

    def _node_entries(self, node: Node) -> _Entries | None:
        return self._entries(node.expr) if node.expr is not None else None

    def _set_size(self, expr: ast.Expr, size: Range | None) -> None:
        if size is not None:
            self.sizes[expr] = size

    def _set_entries(self, expr: ast.Expr, entries: _Entries | None) -> None:
        if entries is not None:
            self.entries[expr] = entries

    # Costs.

    def cost(self, expr: ast.Expr) -> Range:
        if isinstance(expr, ast.Literal):
            return 0, 0
        if isinstance(expr, ast.Ident):
            var = self._peek(expr.name)
            self.paths[expr] = var.path if var is not None else [expr.name]
            return fixed(_SELECT_AND_IDENT)
        if isinstance(expr, ast.Select):
            return self._select(expr)
        if isinstance(expr, ast.Call):
            return self._call(expr)
        if isinstance(expr, ast.CreateList):
            return self._create_list(expr)
        if isinstance(expr, ast.CreateMap):
            return self._create_map(expr)
        if isinstance(expr, ast.CreateStruct):
            total = fixed(_STRUCT_CREATE)
            for _, value in expr.fields:
                total = add(total, self.cost(value))
            return total
        if isinstance(expr, ast.Comprehension):
            return self._bind(expr) if expr.macro == "bind" else self._comprehension(expr)
        return 0, 0

    def _select(self, expr: ast.Select) -> Range:
        if expr.test_only:
            return add(fixed(_PRESENCE_TEST), self.cost(expr.operand))
        total = self.cost(expr.operand)
        if self._type(expr.operand).kind in ("map", "object"):
            total = add(total, fixed(_SELECT_AND_IDENT))
        self.paths[expr] = [*(self._path(expr.operand) or []), expr.field]
        return total

    def _call(self, expr: ast.Call) -> Range:
        if expr.function == "dyn" and expr.target is None and len(expr.args) == 1:
            argument = self.cost(expr.args[0])
            self._set_size(expr, self._size(expr.args[0]))
            self._set_entries(expr, self._entries(expr.args[0]))
            return add(fixed(1), argument)
        arg_costs = []
        arg_nodes = []
        for arg in expr.args:
            arg_costs.append(self.cost(arg))
            arg_nodes.append(self._node(arg))
        overloads = self.checked.overloads.get(expr) or []
        if not overloads:
            return 0, 0
        total: Range = (0, 0)
        target = None
        if expr.target is not None:
            total = add(total, self.cost(expr.target))
            target = self._node(expr.target)
        function_cost: Range = (U64, 0)
        result_size: Range | None = None
        for overload in overloads:
            estimate = self._function_cost(expr, overload, target, arg_nodes, arg_costs)
            function_cost = union(function_cost, estimate.cost)
            if estimate.result_size is not None:
                result_size = (
                    estimate.result_size
                    if result_size is None
                    else union(result_size, estimate.result_size)
                )
            if overload in ("index_list", "index_map") and expr.args:
                entries = self._entries(expr.args[0])
                result_size = entries.value if entries is not None else None
                step = "@items" if overload == "index_list" else "@values"
                self.paths[expr] = [*(self._path(expr.args[0]) or []), step]
            if result_size is None:
                result_size = self._size(expr)
        self._set_size(expr, result_size)
        return add(total, function_cost)

    def _function_cost(
        self,
        expr: ast.Call,
        overload: str,
        target: Node | None,
        args: list[Node],
        arg_costs: list[Range],
    ) -> _CallEstimate:
        arg_sum: Range = (0, 0)
        for cost in arg_costs:
            arg_sum = add(arg_sum, cost)
        library = self.estimator.call_cost(expr.function, target, args)
        if library is not None:
            return _CallEstimate(add(library.cost, arg_sum), library.result_size)
        size = self._size_or_unknown
        if overload == "string_to_bytes" and len(args) == 1:
            s = size(args[0])
            return _CallEstimate(
                add(by_factor(s, _STRING_TRAVERSAL), arg_sum), (s[0], _mul(s[1], 4))
            )
        if overload == "bytes_to_string" and len(args) == 1:
            s = size(args[0])
            return _CallEstimate(add(by_factor(s, _STRING_TRAVERSAL), arg_sum), (s[0] // 4, s[1]))
        if overload in ("starts_with_string", "ends_with_string") and len(args) == 1:
            return _CallEstimate(add(by_factor(size(args[0]), _STRING_TRAVERSAL), arg_sum))
        if overload == "in_list" and len(args) == 2:
            return _CallEstimate(add(by_factor(size(args[1]), 1), arg_sum))
        if overload == "matches_string" and target is not None and len(args) == 1:
            text = by_factor(add(size(target), fixed(1)), _STRING_TRAVERSAL)
            regex = by_factor(size(args[0]), _REGEX_LENGTH)
            return _CallEstimate(add(multiply(text, regex), arg_sum))
        if overload == "contains_string" and target is not None and len(args) == 1:
            text = by_factor(size(target), _STRING_TRAVERSAL)
            part = by_factor(size(args[0]), _STRING_TRAVERSAL)
            return _CallEstimate(add(multiply(text, part), arg_sum))
        if overload in ("logical_or", "logical_and"):
            left, right = arg_costs
            return _CallEstimate((left[0], add(left, right)[1]))
        if overload == "conditional":
            result = union(size(args[1]), size(args[2]))
            branch, other = self._node_entries(args[1]), self._node_entries(args[2])
            self._set_entries(expr, branch.union(other) if branch is not None else None)
            condition, if_true, if_false = arg_costs
            return _CallEstimate(add(condition, union(if_true, if_false)), result)
        if overload in ("add_string", "add_bytes", "add_list") and len(args) == 2:
            result = add(size(args[0]), size(args[1]))
            first, second = self._node_entries(args[0]), self._node_entries(args[1])
            if first is not None and (combined := first.union(second)) is not None:
                self._set_entries(expr, combined)
            if overload == "add_list":  # O(1), tracked for the size
                return _CallEstimate(add(fixed(1), arg_sum), result)
            return _CallEstimate(add(by_factor(result, _STRING_TRAVERSAL), arg_sum), result)
        if overload in _SIZED_COMPARISONS:
            smallest = min(size(args[0])[1], size(args[1])[1])
            compare = (1 if smallest > 0 else 0, smallest)
            return _CallEstimate(add(by_factor(compare, _STRING_TRAVERSAL), arg_sum))
        return _CallEstimate(add(fixed(1), arg_sum))

    def _create_list(self, expr: ast.CreateList) -> Range:
        total: Range = (0, 0)
        items: Range = (0, 0) if not expr.elements else (U64, 0)
        for element in expr.elements:
            total = add(total, self.cost(element))
            items = union(items, self._size_or_unknown(element))
        self._set_entries(expr, _Entries("list", fixed(1), items))
        return add(total, fixed(_LIST_CREATE))

    def _create_map(self, expr: ast.CreateMap) -> Range:
        total: Range = (0, 0)
        empty = not expr.entries
        keys: Range = (0, 0) if empty else (U64, 0)
        values: Range = (0, 0) if empty else (U64, 0)
        for key, value in expr.entries:
            total = add(add(total, self.cost(key)), self.cost(value))
            keys = union(keys, self._size_or_unknown(key))
            values = union(values, self._size_or_unknown(value))
        self._set_entries(expr, _Entries("map", keys, values))
        return add(total, fixed(_MAP_CREATE))

    def _push_local(self, name: str, expr: ast.Expr) -> None:
        self._push(name, _LocalVar(self._path(expr), self._size(expr), self._entries(expr)))

    def _push_iteration(self, name: str, iter_range: ast.Expr) -> None:
        entries = self._entries(iter_range)
        container = entries.container if entries is not None else self._type(iter_range).kind
        if container == "list":
            size, step = (entries.value if entries is not None else None), "@items"
        else:
            size, step = (entries.key if entries is not None else None), "@keys"
        path = [*(self._path(iter_range) or []), step]
        self._push(name, _LocalVar(path, size, None))

    def _comprehension(self, comp: ast.Comprehension) -> Range:
        total = add(self.cost(comp.iter_range), self.cost(comp.accu_init))
        self._push_local(comp.accu_var, comp.accu_init)
        self._push_iteration(comp.iter_var, comp.iter_range)
        loop = self.cost(comp.loop_condition)
        step = self.cost(comp.loop_step)
        self._pop(comp.iter_var)
        total = add(total, self.cost(comp.result))
        self._pop(comp.accu_var)
        count = self._size_or_unknown(comp.iter_range)
        total = add(total, multiply(count, add(step, loop)))
        if isinstance(comp.accu_init, ast.Literal):
            self._set_size(comp, self._size(comp.accu_init))
        elif isinstance(comp.accu_init, (ast.CreateList, ast.CreateMap)):
            self._set_size(comp, count)
            self._set_entries(comp, self._entries(comp.loop_step))
        return total

    def _bind(self, comp: ast.Comprehension) -> Range:
        # Bindings are lazy: the (empty) range is all their iteration costs.
        total = add(self.cost(comp.iter_range), self.cost(comp.accu_init))
        self._push_local(comp.accu_var, comp.accu_init)
        total = add(total, self.cost(comp.result))
        self._pop(comp.accu_var)
        self._set_size(comp, self._size(comp.result))
        self._set_entries(comp, self._entries(comp.result))
        return total


_SIZED_COMPARISONS = frozenset(
    {"equals", "not_equals"}
    | {
        f"{name}_{kind}"
        for name in ("less", "less_equals", "greater", "greater_equals")
        for kind in ("string", "bytes")
    }
)


def _literal_size(expr: ast.Expr) -> Range | None:
    if isinstance(expr, ast.Literal):
        if expr.kind in ("string", "bytes"):
            return fixed(len(expr.value))
        return fixed(1)
    if isinstance(expr, ast.CreateList):
        return fixed(len(expr.elements))
    if isinstance(expr, ast.CreateMap):
        return fixed(len(expr.entries))
    return None


@dataclass(frozen=True)
class Estimate:
    cost: Range

    @property
    def max(self) -> int:
        return self.cost[1]


def estimate(expr: ast.Expr, self_type: DeclType) -> Estimate:
    """The cost of ``expr``, a rule or messageExpression at a schema node of type ``self_type``."""
    checked = check(expr, {"self": self_type, "oldSelf": self_type})
    return Estimate(_Coster(checked, KubernetesEstimator(self_type)).cost(expr))
