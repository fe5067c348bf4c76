"""The built-in demo app (the embedded default of ``vango-mp``).

Its pages and element ids are part of the observable contract (DESIGN.md):
``/counter`` (#count, #inc, #dec), ``/todos`` (#new-todo, li.todo,
button.remove), ``/global`` (#global-count, #global-inc), ``/items``
(li.item, #filter mirrored in ``?q=``, #item-count "N of 200"),
``/items/{id}`` (#item-id), ``/login`` and ``/profile`` (#username,
#password, #user, #logout, #avatar, #upload-progress, #avatar-size: see
:mod:`.account`), ``/widgets`` (#search, #search-count, #slow, #slow-result,
#boom, #toast-btn, #toast-text: see :mod:`.widgets`), ``#worker`` on every page, ``/`` linking them
all, titles ``<Page> · vango-mp``, and #not-found with 404 for anything else.
"""

from ..router import App
from . import account
from .shell import Shell
from .pages import APP_NAME, Counter, GlobalCounter, Home, Item, Items, Todos
from .widgets import Widgets

app = App({"/": Home, "/counter": Counter, "/todos": Todos, "/global": GlobalCounter, "/items": Items,
           "/items/{id:int}": Item, "/widgets": Widgets, **account.PAGES}, title=APP_NAME,
          static_dir="static",  # demo/static: the page scripts (CSP: no inline script)
          layouts={"/": Shell},  # demo.css around every page (demo/shell.py)
          auth_func=account.current_user, auth_check=account.AUTH_CHECK, route_middleware=[account.guard])
account.install(app)  # POST /login, POST /logout

__all__ = ["app"]
