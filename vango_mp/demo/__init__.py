"""The built-in demo app (the embedded default of ``vango-mp``).

Its pages and element ids are part of the observable contract (DESIGN.md):
``/counter`` (#count, #inc, #dec), ``/todos`` (#new-todo, li.todo,
button.remove), ``/global`` (#global-count, #global-inc), ``#worker`` on
every page, and ``/`` linking them all.
"""

from ..router import App
from .pages import Counter, GlobalCounter, Home, Todos

app = App({"/": Home, "/counter": Counter, "/todos": Todos, "/global": GlobalCounter}, title="vango-mp demo")

__all__ = ["app"]
