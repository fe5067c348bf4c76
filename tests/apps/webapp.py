"""Apps for the HTTP-surface tests: the demo's pages under a hardened CSP; app routes, middleware, forms."""

from __future__ import annotations

from typing import Any

from vango_mp.demo.pages import Counter, Home, Todos
from vango_mp.headers import hardened_csp_options
from vango_mp.router import App
from vango_mp.routes import CallNext, Request, Response, csrf_input, redirect, use_response
from vango_mp.navigation import use_query
from vango_mp.vdom import Node, component, h

pages = {"/": Home, "/counter": Counter, "/todos": Todos}

# The demo's pages with the stricter profile: no inline styles either.
hardened = App(pages, csp=hardened_csp_options())


@component
def Feedback() -> Node:
    sent = use_query().get("sent") == "1"  # the same on the first load and in the live session
    return h.main(
        h.p("Thanks!" if sent else "", id="sent"),
        h.form(
            csrf_input(),
            h.input(name="text", id="text"),
            h.button("Send", type="submit", id="send"),
            method="post", action="/feedback", id="feedback",
        ),
    )


@component
def Moved() -> Node:
    response = use_response()
    if response is not None:
        response.redirect("/counter", 301)
    return h.p("moved")


@component
def Gone() -> Node:
    response = use_response()
    if response is not None:
        response.status = 410
        response.set_header("X-Page", "gone")
        response.set_cookie("seen_gone", "1")
    return h.p("gone", id="gone")


async def tag(request: Request, call_next: CallNext) -> Response:
    """Outermost: marks every response, and records the order middleware ran in."""
    request.state["order"] = ["tag"]
    response = await call_next(request)
    response.set_header("X-Middleware", ",".join(request.state["order"]))
    return response


def who(request: Request, call_next: CallNext) -> Any:
    """A sync middleware: the user from a cookie; /api/private short-circuits without one."""
    request.state["order"].append("who")
    request.state["user"] = request.cookies.get("user")
    if request.path.startswith("/api/private") and not request.state["user"]:
        return Response.json({"error": "login first"}, 401)
    return call_next(request)


web = App({**pages, "/form": Feedback, "/moved": Moved, "/gone": Gone}, middleware=[tag, who])
FEEDBACK: list[str] = []  # per worker: what /feedback received


@web.route("/api/hello/{name}")
def hello(request: Request) -> dict[str, Any]:
    return {"hello": request.params["name"], "lang": request.query.get("lang", "en"),
            "order": request.state["order"]}


@web.route("/api/echo", methods=["POST", "PUT"])
async def echo(request: Request) -> Any:
    return {"method": request.method, "got": request.json()}


@web.route("/api/private/me")
def me(request: Request) -> str:
    return f"user={request.state['user']}"


@web.route("/feedback", methods=["POST"])
def feedback(request: Request) -> Response:
    FEEDBACK.append(request.form.get("text", ""))
    response = redirect("/form?sent=1")
    response.set_cookie("last_feedback", str(len(FEEDBACK)))
    return response


@web.route("/api/feedback")
def feedback_seen(request: Request) -> list[str]:
    return FEEDBACK


@web.route("/hook", methods=["POST"], csrf=False)
def hook(request: Request) -> Response:
    return Response.text("hooked", 202, headers={"X-Hook": "1"})


@web.route("/api/teapot")
def teapot(request: Request) -> Response:
    return Response.text("short and stout", 418, headers={"X-Custom": "yes", "Cache-Control": "max-age=60"})


@web.route("/api/cookie")
def cookie(request: Request) -> Response:
    response = Response.json({"ok": True})
    response.set_cookie("pref", "dark", max_age=3600)
    return response


@web.route("/go/accounts")
def go_accounts(request: Request) -> Response:
    return redirect("https://accounts.example/login?next=%2F", 302, external=True)


@web.route("/go/elsewhere")
def go_elsewhere(request: Request) -> Response:
    return redirect(request.query.get("to", "https://evil.example/"), external=True)


@web.route("/api/nothing", methods=["DELETE"])
def nothing(request: Request) -> None:
    return None


@web.route("/counter", methods=["POST"])
def counter_post(request: Request) -> str:
    """An app route on a page's path: POST goes here, GET still renders the page."""
    return "posted to the counter"
