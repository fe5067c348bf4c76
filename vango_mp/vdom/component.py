"""Components and hooks.

``@component`` turns ``def Counter(start: int = 0) -> Node`` into a factory
returning a :class:`ComponentNode`; :mod:`vango_mp.vdom.mount` renders it
into a :class:`ComponentInstance`. Hooks are identified by call order, as in
React: a component must call the same hooks in the same order on every
render. A hook's stable id is ``"<path>/<index>"``, where the path names the
instance from the root: ``App/Counter[0]/0`` (first hook of the first unkeyed
Counter under App), ``App/Row[key=a7]/0`` for a keyed one; persistence uses it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any, Protocol, TypeVar, Union

from ..reactive import Computed, Owner, Reaction, Signal, computed, rendering
from .nodes import ComponentNode, Node, normalize

__all__ = [
    "component", "use_signal", "use_memo", "use_effect", "use_context", "use_held",
    "ComponentInstance", "Scope", "HookError", "current_instance",
]

T = TypeVar("T")

# Hook kinds, stored as hooks[i] = (kind, value).
SIGNAL = "signal"
MEMO = "memo"
EFFECT = "effect"
HELD = "held"  # an object a hook keeps for the instance's life (not persisted): use_held


class HookError(RuntimeError):
    """A hook called outside a render, or hooks called in a different order than the first render."""


class RootLike(Protocol):
    """What an instance needs from its mount.Root."""

    context: dict[str, Any]
    pending_values: dict[str, Any]

    def queue_effect(self, inst: ComponentInstance, index: int, fn: Callable[[], Any]) -> None: ...
    def mark_dirty(self) -> None: ...
    def defer(self, inst: ComponentInstance) -> None: ...
    def record(self, kind: str, exc: BaseException, what: str) -> None: ...


_current: ContextVar[ComponentInstance | None] = ContextVar("vango_current_instance", default=None)


#: Component functions declared ``shared=True`` (see vango_mp.vdom.shared).
SHARED: set[Callable[..., Any]] = set()


def component(fn: Callable[..., Any] | None = None, *, shared: bool = False) -> Any:
    """Make ``fn`` a component: calling it returns a ComponentNode (``key=`` is reserved).

    ``@component(shared=True)`` declares that the output depends only on the
    props and the global signals it reads: sessions rendering it with the same
    props share one render, one diff and the same patch bytes
    (vango_mp.vdom.shared). Such a component calls no hooks.
    """
    if fn is None:
        return functools.partial(component, shared=shared)
    if getattr(fn, "__vango_component__", None) is not None:
        if shared:
            SHARED.add(fn.__vango_component__)  # type: ignore[attr-defined]
        return fn  # already a component factory
    if shared:
        SHARED.add(fn)
    names = [
        p.name for p in inspect.signature(fn).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]

    @functools.wraps(fn)
    def factory(*args: Any, key: Any = None, **props: Any) -> ComponentNode:
        if args:
            if len(args) > len(names):
                raise TypeError(f"{fn.__name__}() takes {len(names)} positional props, got {len(args)}")
            for name, value in zip(names, args):
                if name in props:
                    raise TypeError(f"{fn.__name__}() got multiple values for prop {name!r}")
                props[name] = value
        return ComponentNode(fn, props, key)

    factory.__vango_component__ = fn  # type: ignore[attr-defined]
    return factory


def child_path(parent: str, ident: tuple[Any, bool, Any]) -> str:
    """``Name[key=k]`` or ``Name[i]`` under the parent's path; a first unkeyed top-level one is just ``Name``."""
    fn, keyed, k = ident
    name = getattr(fn, "__name__", "component")
    seg = f"{name}[key={k}]" if keyed else (f"{name}[{k}]" if parent or k else name)
    return f"{parent}/{seg}" if parent else seg


Ident = tuple[Any, bool, Any]  # (fn, keyed?, key or position among same-named siblings)


class OneChild:
    """A scope's children when it has one: that pair, without a dict (48 B where one is 224)."""

    __slots__ = ("ident", "inst")

    def __init__(self, ident: Ident, inst: ComponentInstance) -> None:
        self.ident = ident
        self.inst = inst

    def get(self, ident: Ident, default: Any = None) -> Any:
        return self.inst if ident == self.ident else default

    def __getitem__(self, ident: Ident) -> ComponentInstance:
        if ident == self.ident:
            return self.inst
        raise KeyError(ident)

    def values(self) -> tuple[ComponentInstance]:
        return (self.inst,)

    def items(self) -> tuple[tuple[Ident, ComponentInstance]]:
        return ((self.ident, self.inst),)

    def __len__(self) -> int:
        return 1

    def __iter__(self) -> Iterator[Ident]:
        return iter((self.ident,))


Children = Union[Mapping[Ident, "ComponentInstance"], OneChild]
NO_CHILDREN: Mapping[Ident, ComponentInstance] = MappingProxyType({})  # a scope with none; never written


def compact(children: dict[Ident, ComponentInstance]) -> Children:
    """``children`` as a scope keeps them: none and one child without a dict of their own."""
    if not children:
        return NO_CHILDREN
    if len(children) == 1:
        ((ident, inst),) = children.items()
        return OneChild(ident, inst)
    return children


def writable(scope: Scope) -> dict[Ident, ComponentInstance]:
    """``scope``'s children as a dict it owns, for a write (the rare case: adopting a kept instance)."""
    children = scope.children
    if type(children) is not dict:
        children = scope.children = dict(children.items())
    return children


class Scope:
    """A place children are resolved in: the Root's top level, or a component instance."""

    __slots__ = ("parent", "owner", "children", "raw", "plan", "output", "subtree_dirty", "bind")

    def __init__(self, parent: Scope | None, owner: Owner) -> None:
        self.parent = parent
        self.owner = owner
        # (fn, keyed?, key or position) -> child instance, from the last resolution (see compact)
        self.children: Children = NO_CHILDREN
        self.raw: list[Node] = []  # normalised render output, components unresolved
        self.plan: list[Any] | None = None  # mount's path to the components inside raw
        self.output: list[Node] = []  # resolved nodes, reused while clean
        self.subtree_dirty = False  # some descendant instance needs a render
        # Tracks the signals bound in ``raw`` (a Signal placed as a child: mount resolves it), if any.
        self.bind: Reaction | None = None

    @property
    def path(self) -> str:
        """Names the scope from the root (the top level is ``""``); worked out when asked, never stored."""
        return ""

    def mark_path(self) -> None:
        """Mark the ancestors: the next resolution walks down to this scope."""
        scope = self.parent
        while scope is not None and not scope.subtree_dirty:
            scope.subtree_dirty = True
            scope = scope.parent


class ComponentInstance(Scope):
    """One mounted component: its hooks, Owner, Reaction, props and last output."""

    __slots__ = ("fn", "key", "node", "props", "root", "reaction", "hooks", "hook_index", "renders",
                 "dirty", "disposed", "boundary", "ident", "place")

    def __init__(self, node: ComponentNode, parent: Scope, root: RootLike, ident: tuple[Any, bool, Any]) -> None:
        super().__init__(parent, Owner(parent.owner))
        self.fn = node.fn
        self.key = node.key
        self.ident = ident  # its key in the parent's ``children``: (fn, keyed?, key or position)
        # A shared or binding component's element in the resolved tree: (the live child list holding it,
        # index), or None (vdom.swap)
        self.place: tuple[list[Node], int] | None = None
        self.node = node
        self.props = node.props
        self.root = root
        self.reaction: Reaction = self.owner.run(lambda: Reaction(self))
        self.hooks: list[tuple[str, Any]] = _NO_HOOKS  # a list of its own from the first hook on
        self.hook_index = 0
        self.renders = 0
        self.dirty = True
        self.disposed = False
        self.boundary: Any = None  # an ErrorBoundary's state (vdom.boundary); None for other components

    @property
    def name(self) -> str:
        """The component function's name."""
        return getattr(self.fn, "__name__", "component")

    @property
    def path(self) -> str:
        """``App/Counter[0]``: what hook ids and error messages name it by (see the module docstring)."""
        parent = self.parent
        return child_path(parent.path if parent is not None else "", self.ident)

    def render(self) -> list[Node]:
        """Run the component (tracked, inside its Owner and ``rendering()``); return normalised nodes.

        Hooks called in another order than on the first render leave the
        instance's state unusable: it is reset (hooks, effects, children
        dropped) and rendered afresh; the :class:`HookError` is recorded in the
        root's ``errors`` for the session to report. A fresh render that fails
        again raises.
        """
        try:
            return self._render()
        except HookError as err:
            if not self.renders or self.disposed:
                raise
            self.reset()
            record = getattr(self.root, "record", None)
            if record is not None:
                record("hook", err, f"{self.path} was reset: its hooks changed order")
            return self._render()

    def reset(self) -> None:
        """Forget every hook and child: the next render is a first render (its state starts over)."""
        children, self.children = self.children, NO_CHILDREN
        for child in children.values():
            child.dispose()
        self.owner.dispose()
        self.owner = Owner(self.parent.owner)
        self.reaction = self.owner.run(lambda: Reaction(self))
        self.hooks = _NO_HOOKS
        self.renders = 0
        self.raw = self.output = []
        self.plan = None
        self.place = None
        self.bind = None

    def _render(self) -> list[Node]:
        self.dirty = False
        self.hook_index = 0
        token = _current.set(self)
        try:
            with rendering():
                result = self.owner.run(self._track)
        except BaseException:
            self.dirty = True
            raise
        finally:
            _current.reset(token)
        if self.renders and self.hook_index != len(self.hooks):
            self.dirty = True
            raise HookError(
                f"component {self.name} ({self.path}) called {self.hook_index} hooks, {len(self.hooks)} on its "
                f"first render (hook #{min(self.hook_index, len(self.hooks))} is the first missing or new one): "
                "hooks must be called unconditionally, in the same order"
            )
        self.renders += 1
        return normalize((result,))

    def _track(self) -> Any:
        return self.reaction.track(self._call)

    def _call(self) -> Any:
        return self.fn(**self.props)

    def _invalidate(self) -> None:
        """Reaction callback: a signal this render read changed."""
        if self.disposed:
            return
        if not self.dirty:
            self.dirty = True
            if self.place is not None and self.fn in SHARED:  # the root may swap its element in place
                self.root.defer(self)
                return
            self.mark_path()
        self.root.mark_dirty()  # even if still dirty from a failed render: that one is retried now

    # The instance itself is its Reaction's callback: no bound method kept per instance (64 B each).
    __call__ = _invalidate


    def hook_id(self, index: int) -> str:
        """Stable id of hook ``index``: ``"<path>/<index>"``."""
        return f"{self.path}/{index}"

    def dispose(self) -> None:
        """Unmount: dispose children, then this instance's Owner (effects, reaction, cleanups)."""
        if self.disposed:
            return
        self.disposed = True
        children, self.children = self.children, NO_CHILDREN
        try:
            for child in children.values():
                child.dispose()
        finally:
            self.owner.dispose()
            # Break the cycles (instance <-> reaction, hooks, resolved nodes holding handlers) so
            # an unmounted page is freed at once, not at the next full collection (navigation
            # unmounts whole pages; workers collect rarely: worker._tune_gc).
            self.hooks = _NO_HOOKS
            self.raw = self.output = []
            self.plan = None
            self.place = None
            self.bind = None
            self.parent = None  # type: ignore[assignment]


# region Hooks ----------------------------------------------------------------


def _slot(hook: str, kind: str) -> tuple[ComponentInstance, int, Any]:
    """The current instance, this hook's index, and its stored value (``_NEW`` on first call)."""
    inst = _current.get()
    if inst is None:
        raise HookError(f"{hook}() called outside a component render: call hooks inside a @component function")
    if inst.fn in SHARED:
        _no_hooks(inst, hook)
    i = inst.hook_index
    inst.hook_index = i + 1
    hooks = inst.hooks
    if i < len(hooks):
        have, value = hooks[i]
        if have != kind:
            raise HookError(f"component {inst.name} ({inst.path}): hook #{i} was {have} on the first render, "
                            f"now {kind} (a conditional hook?)")
        return inst, i, value
    if inst.renders:
        raise HookError(f"component {inst.name} ({inst.path}): {hook}() is a new hook #{i} after the first "
                        "render (a conditional hook?)")
    return inst, i, _NEW


def _no_hooks(inst: ComponentInstance, hook: str) -> None:
    raise HookError(f"{hook}() in shared component {inst.name} ({inst.path}): a shared component renders "
                    "from its props and global signals only, so it calls no hooks")


_NEW = object()
_NO_HOOKS: list[tuple[str, Any]] = []  # the hooks of an instance that has none; never appended to


def _add_hook(inst: ComponentInstance, kind: str, value: Any) -> None:
    if inst.hooks:
        inst.hooks.append((kind, value))
    else:
        inst.hooks = [(kind, value)]
_TYPED_RESTORE = False  # --dev: a restored value must have its initial's type (the code may have changed)


def check_restored_types(on: bool) -> None:
    """Restore a ``use_signal`` value only if its type matches the initial one (``--dev``, where a
    session may resume under edited code: state is kept where the component shapes still match)."""
    global _TYPED_RESTORE
    _TYPED_RESTORE = on


def use_signal(initial: T) -> Signal[T]:
    """A Signal created on the first render and kept for the instance's life (restorable by hook id)."""
    inst, i, sig = _slot("use_signal", SIGNAL)
    if sig is _NEW:
        pending = inst.root.pending_values
        if pending:
            value = pending.pop(inst.hook_id(i), initial)
            if not _TYPED_RESTORE or initial is None or type(value) is type(initial):
                initial = value
        sig = Signal(initial)
        _add_hook(inst, SIGNAL, sig)
    return sig


def use_memo(fn: Callable[[], T]) -> Computed[T]:
    """A Computed of ``fn`` created on the first render (``fn`` is not replaced on later renders)."""
    inst, _, memo = _slot("use_memo", MEMO)
    if memo is _NEW:
        memo = computed(fn)  # created inside the instance's Owner: disposed on unmount
        _add_hook(inst, MEMO, memo)
    return memo


def use_effect(fn: Callable[[], Any]) -> None:
    """Start ``effect(fn)`` once, after the first render is committed; it is disposed on unmount.

    An ``async def`` fn runs as a task of the session (vango_mp.tasks), once,
    cancelled on unmount; what it reads is not tracked (use ``use_resource``
    for async work that follows signals). A server render starts no task.
    """
    inst, i, value = _slot("use_effect", EFFECT)
    if value is _NEW:
        _add_hook(inst, EFFECT, None)
        inst.root.queue_effect(inst, i, _async_effect(inst, fn) if inspect.iscoroutinefunction(fn) else fn)


def _async_effect(inst: ComponentInstance, fn: Callable[[], Any]) -> Callable[[], Any]:
    def start() -> Callable[[], Any] | None:
        session = inst.root.context.get("session")
        if session is None:  # a stateless server render: no session to own the task
            return None
        return session.spawn(fn(), f"async effect of {inst.path}").cancel
    return start


def use_held(factory: Callable[[], T]) -> T:
    """An object made by ``factory()`` on the first render and kept (never persisted) for the instance's life."""
    inst, _, value = _slot("use_held", HELD)
    if value is _NEW:
        value = factory()
        _add_hook(inst, HELD, value)
    return value


def current_instance() -> ComponentInstance:
    """The instance being rendered (for framework components that manage their children)."""
    inst = _current.get()
    if inst is None:
        raise HookError("current_instance() called outside a component render")
    return inst


def use_context(key: str, default: Any = None) -> Any:
    """A value from the Root's context dict (e.g. "worker", "session", "path", "params")."""
    inst = _current.get()
    if inst is None:
        raise HookError("use_context() called outside a component render: call hooks inside a @component function")
    if inst.fn in SHARED:
        _no_hooks(inst, "use_context")
    return inst.root.context.get(key, default)


# endregion
