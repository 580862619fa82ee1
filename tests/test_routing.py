"""Unit tests for corkweb.routing: pure, no sockets, no sleeps."""

from __future__ import annotations

import itertools
import random
import uuid

import pytest

from corkweb.routing import Match, MethodNotAllowed, NotFound, Route, Router


def make(*routes: tuple[str, str], **named: tuple[str, str]) -> Router:
    """A frozen router; each route's handler is its 'METHOD pattern' string."""
    router = Router()
    for method, path in routes:
        router.add(method, path, f"{method} {path}")
    for name, (method, path) in named.items():
        router.add(method, path, f"{method} {path}", name=name)
    router.freeze()
    return router


def handler(router: Router, method: str, path: str) -> object:
    return router.match(method, path).route.handler


def handlers(router: Router, method: str, path: str) -> list[object]:
    return [m.route.handler for m in router.iter_matches(method, path)]


# --- static routes ---------------------------------------------------------------


def test_static_match() -> None:
    router = make(("GET", "/"), ("GET", "/hello/world"))
    m = router.match("GET", "/hello/world")
    assert isinstance(m, Match)
    assert m.route.handler == "GET /hello/world"
    assert m.params == {} and m.values == ()
    assert handler(router, "GET", "/") == "GET /"


def test_static_match_is_never_shared() -> None:
    router = make(("GET", "/a"))
    first = router.match("GET", "/a")
    first.params["x"] = 1
    assert router.match("GET", "/a").params == {}


def test_trailing_slash_is_significant() -> None:
    router = make(("GET", "/a"), ("GET", "/b/"), ("GET", "/c/:x"))
    assert handler(router, "GET", "/a") == "GET /a"
    assert handler(router, "GET", "/b/") == "GET /b/"
    for path in ("/a/", "/b", "/c/x/", "/c/"):
        with pytest.raises(NotFound):
            router.match("GET", path)


def test_static_segments_compare_the_raw_path() -> None:
    router = make(("GET", "/a%20b"))
    assert handler(router, "GET", "/a%20b") == "GET /a%20b"
    with pytest.raises(NotFound):
        router.match("GET", "/a b")


# --- parameters and converters ---------------------------------------------------


def test_plain_parameter_by_name_and_index() -> None:
    router = make(("GET", "/users/:uid/posts/:post"))
    m = router.match("GET", "/users/ann/posts/7")
    assert m.params == {"uid": "ann", "post": "7"}
    assert m.values == ("ann", "7")
    assert m.route.param_names == ("uid", "post")


def test_plain_parameter_is_one_non_empty_segment() -> None:
    router = make(("GET", "/u/:name"))
    for path in ("/u/", "/u/a/b", "/u"):
        with pytest.raises(NotFound):
            router.match("GET", path)


def test_int_converter() -> None:
    router = make(("GET", "/n/:id<int>"))
    for text, value in (("42", 42), ("0", 0), ("-5", -5), ("007", 7)):
        m = router.match("GET", f"/n/{text}")
        assert m.params == {"id": value} and type(m.params["id"]) is int
        assert m.values == (value,)
    for bad in ("abc", "4.2", "1e3", "+1", "-", "٣", "%31"):
        with pytest.raises(NotFound):
            router.match("GET", f"/n/{bad}")


def test_huge_int_does_not_match_instead_of_raising() -> None:
    # int() raises ValueError above 4300 digits (CVE-2020-10735): that would be a 500.
    router = make(("GET", "/n/:id<int>"), ("GET", "/n/:name"))
    assert router.match("GET", "/n/" + "9" * 640).params == {"id": int("9" * 640)}
    assert router.match("GET", "/n/" + "9" * 5000).params == {"name": "9" * 5000}


def test_float_converter() -> None:
    router = make(("GET", "/f/:x<float>"))
    for text, value in (("1", 1.0), ("2.5", 2.5), ("-0.5", -0.5), ("1e+20", 1e20)):
        m = router.match("GET", f"/f/{text}")
        assert m.params["x"] == value and type(m.params["x"]) is float
    for bad in ("abc", "1.", ".5", "nan", "inf", "1,5"):
        with pytest.raises(NotFound):
            router.match("GET", f"/f/{bad}")


def test_uuid_converter() -> None:
    router = make(("GET", "/o/:id<uuid>"))
    value = uuid.uuid4()
    for text in (str(value), str(value).upper()):
        assert router.match("GET", f"/o/{text}").params == {"id": value}
    for bad in ("not-a-uuid", str(value)[:-1], str(value).replace("-", "")):
        with pytest.raises(NotFound):
            router.match("GET", f"/o/{bad}")


def test_explicit_str_converter_is_the_plain_parameter() -> None:
    router = make(("GET", "/s/:name<str>"))
    assert router.match("GET", "/s/x%20y").params == {"name": "x y"}


def test_path_converter_takes_the_rest() -> None:
    router = make(("GET", "/files/:rest<path>"))
    assert router.match("GET", "/files/a").params == {"rest": "a"}
    assert router.match("GET", "/files/a/b/c.txt").params == {"rest": "a/b/c.txt"}
    assert router.match("GET", "/files/a/").params == {"rest": "a/"}
    with pytest.raises(NotFound):
        router.match("GET", "/files/")


def test_failing_converter_falls_to_the_next_route() -> None:
    router = make(("GET", "/users/:id<int>"), ("GET", "/users/:name"))
    assert router.match("GET", "/users/42").params == {"id": 42}
    assert router.match("GET", "/users/abc").params == {"name": "abc"}


def test_failing_converter_is_404_not_405() -> None:
    router = make(("GET", "/users/:id<int>"))
    with pytest.raises(NotFound):
        router.match("POST", "/users/abc")


def test_percent_decoding_of_values() -> None:
    router = make(("GET", "/s/:name"), ("GET", "/p/:rest<path>"))
    assert router.match("GET", "/s/a%20b").params == {"name": "a b"}
    assert router.match("GET", "/s/caf%C3%A9").params == {"name": "café"}
    # Segments are split on the raw path: an encoded slash stays inside the value.
    assert router.match("GET", "/s/a%2Fb").params == {"name": "a/b"}
    assert router.match("GET", "/p/x%20y/z%2F").params == {"rest": "x y/z/"}


def test_same_parameter_names_in_many_routes() -> None:
    paths = [f"/r{i}/:id/:name" for i in range(30)]
    router = make(*[("GET", p) for p in paths])
    for i in range(30):
        m = router.match("GET", f"/r{i}/x{i}/y{i}")
        assert m.route.path == paths[i]
        assert m.values == (f"x{i}", f"y{i}")


# --- wildcards -------------------------------------------------------------------


def test_trailing_wildcard() -> None:
    router = make(("GET", "/static/*"))
    for path in ("/static/", "/static/app.js", "/static/a/b/c"):
        m = router.match("GET", path)
        assert m.route.path == "/static/*"
        assert m.params == {} and m.values == ()
    with pytest.raises(NotFound):
        router.match("GET", "/static")


def test_root_wildcard_matches_everything() -> None:
    router = make(("GET", "/*"))
    for path in ("/", "/a", "/a/b/"):
        assert handler(router, "GET", path) == "GET /*"


def test_suffix_wildcard() -> None:
    router = make(("GET", "/sitemap_*"), ("GET", "/docs/v*"))
    assert handler(router, "GET", "/sitemap_823.xml") == "GET /sitemap_*"
    assert handler(router, "GET", "/sitemap_") == "GET /sitemap_*"
    assert handler(router, "GET", "/docs/v2/index.html") == "GET /docs/v*"
    for path in ("/sitemap", "/sitemap-1.xml", "/docs/x"):
        with pytest.raises(NotFound):
            router.match("GET", path)


# --- priority --------------------------------------------------------------------

PRIORITY = [  # best first, for the path /a/b
    "/a/b",
    "/a/:x",
    "/a/:x<path>",
    "/a/b*",
    "/a/*",
    "/:y/b",
    "/*",
]


@pytest.mark.parametrize("order", list(itertools.permutations(range(5))))
def test_priority_ignores_registration_order(order: tuple[int, ...]) -> None:
    chosen = [PRIORITY[i] for i in order]
    router = make(*[("GET", p) for p in chosen])
    expected = [f"GET {p}" for p in PRIORITY[:5]]
    assert handler(router, "GET", "/a/b") == expected[0]
    assert handlers(router, "GET", "/a/b") == expected


@pytest.mark.parametrize("seed", range(20))
def test_full_priority_chain_in_random_orders(seed: int) -> None:
    shuffled = PRIORITY[:]
    random.Random(seed).shuffle(shuffled)
    router = make(*[("GET", p) for p in shuffled])
    assert handlers(router, "GET", "/a/b") == [f"GET {p}" for p in PRIORITY]


def test_segments_compare_left_to_right() -> None:
    for routes in [("/:x/b", "/a/:y"), ("/a/:y", "/:x/b")]:
        router = make(*[("GET", p) for p in routes])
        assert handler(router, "GET", "/a/b") == "GET /a/:y"
    # A one-segment parameter beats :name<path>, even if a '*' follows it.
    for routes in [("/a/:x<path>", "/a/:x/*"), ("/a/:x/*", "/a/:x<path>")]:
        router = make(*[("GET", p) for p in routes])
        assert handler(router, "GET", "/a/b/c") == "GET /a/:x/*"


def test_typed_and_plain_parameters_tie_then_registration_order() -> None:
    router = make(("GET", "/u/:name"), ("GET", "/u/:id<int>"))
    assert handler(router, "GET", "/u/42") == "GET /u/:name"
    router = make(("GET", "/u/:id<int>"), ("GET", "/u/:name"))
    assert handler(router, "GET", "/u/42") == "GET /u/:id<int>"


def test_same_shape_falls_back_to_registration_order() -> None:
    router = make(("GET", "/x/:a"), ("GET", "/x/:b"))
    assert handlers(router, "GET", "/x/1") == ["GET /x/:a", "GET /x/:b"]


# --- methods: ANY, HEAD, 404, 405 --------------------------------------------------


@pytest.mark.parametrize("path", ["/items", "/items/:id"])
def test_specific_method_beats_any_at_equal_specificity(path: str) -> None:
    concrete = path.replace(":id", "7")
    for routes in [(("ANY", path), ("GET", path)), (("GET", path), ("ANY", path))]:
        router = make(*routes)
        assert handler(router, "GET", concrete) == f"GET {path}"
        assert handlers(router, "GET", concrete) == [f"GET {path}", f"ANY {path}"]
        assert handler(router, "DELETE", concrete) == f"ANY {path}"


def test_any_matches_every_method() -> None:
    router = make(("ANY", "/hook"), ("ANY", "/d/:x"))
    for method in ("GET", "HEAD", "POST", "PURGE", "OPTIONS"):
        assert handler(router, method, "/hook") == "ANY /hook"
        assert handler(router, method, "/d/1") == "ANY /d/:x"


def test_any_with_a_better_path_beats_a_specific_method() -> None:
    router = make(("GET", "/a/:x"), ("ANY", "/a/b"))
    assert handlers(router, "GET", "/a/b") == ["ANY /a/b", "GET /a/:x"]


def test_method_any_is_normalised() -> None:
    router = Router()
    route = router.add("any", "/x", None)
    assert route.method == "ANY"
    assert router.add("post", "/x", None).method == "POST"


def test_head_is_answered_by_get() -> None:
    router = make(("GET", "/page"), ("GET", "/u/:id"))
    assert handler(router, "HEAD", "/page") == "GET /page"
    assert handler(router, "HEAD", "/u/1") == "GET /u/:id"


def test_head_order_exact_then_get_then_any() -> None:
    for path in ("/r", "/r/:x"):
        concrete = path.replace(":x", "1")
        routes = [("ANY", path), ("GET", path), ("HEAD", path)]
        for order in itertools.permutations(routes):
            router = make(*order)
            expected = [f"HEAD {path}", f"GET {path}", f"ANY {path}"]
            assert handlers(router, "HEAD", concrete) == expected
        router = make(("ANY", path), ("GET", path))
        assert handler(router, "HEAD", concrete) == f"GET {path}"


def test_get_answers_head_only() -> None:
    router = make(("GET", "/page"))
    with pytest.raises(MethodNotAllowed):
        router.match("POST", "/page")


def test_404_when_nothing_matches() -> None:
    router = make(("GET", "/a"), ("POST", "/b/:x"))
    with pytest.raises(NotFound) as info:
        router.match("GET", "/nope")
    assert info.value.status == 404 and "/nope" in str(info.value)
    with pytest.raises(NotFound):
        router.match("GET", "relative")


def test_405_lists_allowed_methods_sorted() -> None:
    router = make(("POST", "/a"), ("GET", "/a"), ("DELETE", "/a/:x"), ("PUT", "/a/:x"))
    with pytest.raises(MethodNotAllowed) as info:
        router.match("PATCH", "/a")
    assert info.value.allowed == ("GET", "HEAD", "POST")
    assert info.value.status == 405 and ("allow", "GET, HEAD, POST") in info.value.headers
    with pytest.raises(MethodNotAllowed) as info:
        router.match("GET", "/a/1")
    assert info.value.allowed == ("DELETE", "PUT")  # no GET, so no HEAD


def test_405_merges_static_and_dynamic_routes() -> None:
    router = make(("GET", "/a/b"), ("POST", "/a/:x"), ("PUT", "/*"))
    with pytest.raises(MethodNotAllowed) as info:
        router.match("DELETE", "/a/b")
    assert info.value.allowed == ("GET", "HEAD", "POST", "PUT")


def test_405_lists_options_only_when_registered() -> None:
    router = make(("GET", "/a"))
    with pytest.raises(MethodNotAllowed) as info:
        router.match("OPTIONS", "/a")
    assert "OPTIONS" not in info.value.allowed
    router = make(("GET", "/a"), ("OPTIONS", "/a"))
    with pytest.raises(MethodNotAllowed) as info:
        router.match("DELETE", "/a")
    assert info.value.allowed == ("GET", "HEAD", "OPTIONS")


def test_request_method_is_case_sensitive() -> None:
    router = make(("GET", "/a"))
    with pytest.raises(MethodNotAllowed):
        router.match("get", "/a")


def test_a_static_route_of_another_method_does_not_hide_a_dynamic_one() -> None:
    router = make(("GET", "/a/b"), ("POST", "/a/:x"))
    assert router.match("POST", "/a/b").params == {"x": "b"}


# --- iter_matches (fall-through) ---------------------------------------------------


def test_iter_matches_yields_all_in_priority_order() -> None:
    router = make(
        ("GET", "/*"),
        ("ANY", "/api/:x"),
        ("GET", "/api/:x"),
        ("GET", "/api/users"),
        ("POST", "/api/users"),
        ("GET", "/api/:id<int>"),
    )
    assert handlers(router, "GET", "/api/users") == [
        "GET /api/users",
        "GET /api/:x",
        "ANY /api/:x",
        "GET /*",
    ]
    # Equal segments: the specific method first, then registration order.
    assert handlers(router, "GET", "/api/7") == [
        "GET /api/:x",
        "GET /api/:id<int>",
        "ANY /api/:x",
        "GET /*",
    ]
    assert handlers(router, "POST", "/api/users") == ["POST /api/users", "ANY /api/:x"]


def test_iter_matches_first_is_match() -> None:
    router = make(("GET", "/a/:x"), ("GET", "/a/b"), ("GET", "/*"), ("ANY", "/a/*"))
    requests = [("GET", "/a/b"), ("GET", "/a/c"), ("PUT", "/a/c"), ("GET", "/z")]
    for method, path in requests:
        first = next(router.iter_matches(method, path))
        assert first.route is router.match(method, path).route


def test_iter_matches_converts_parameters() -> None:
    router = make(("GET", "/n/:id<int>"), ("GET", "/n/:name"))
    matches = list(router.iter_matches("GET", "/n/5"))
    assert [m.params for m in matches] == [{"id": 5}, {"name": "5"}]


def test_iter_matches_yields_nothing_instead_of_raising() -> None:
    router = make(("GET", "/a"), ("GET", "/b/:x"))
    assert list(router.iter_matches("GET", "/zzz")) == []
    assert list(router.iter_matches("POST", "/a")) == []
    assert list(router.iter_matches("POST", "/b/1")) == []


def test_iter_matches_is_lazy() -> None:
    router = make(("GET", "/a/b"), ("GET", "/a/:x"))
    matches = router.iter_matches("GET", "/a/b")
    assert next(matches).route.path == "/a/b"
    assert next(matches).route.path == "/a/:x"
    assert next(matches, None) is None


# --- url_for -----------------------------------------------------------------------


def test_url_for_static_and_parameters() -> None:
    router = make(
        home=("GET", "/"),
        user=("GET", "/users/:id<int>/posts/:slug"),
        obj=("GET", "/o/:id<uuid>"),
        price=("GET", "/p/:x<float>"),
        file=("GET", "/files/:rest<path>"),
    )
    assert router.url_for("home") == "/"
    assert router.url_for("user", id=3, slug="hello") == "/users/3/posts/hello"
    assert router.url_for("user", id="-4", slug="a") == "/users/-4/posts/a"
    value = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert router.url_for("obj", id=value) == f"/o/{value}"
    assert router.url_for("price", x=2.5) == "/p/2.5"
    assert router.url_for("price", x=3) == "/p/3"
    assert router.url_for("file", rest="a b/c.txt") == "/files/a%20b/c.txt"


def test_url_for_percent_encodes_values() -> None:
    # A parameter may be called "name": url_for's own name is positional-only.
    router = make(s=("GET", "/s/:name"))
    assert router.url_for("s", name="a b/c?d#é") == "/s/a%20b%2Fc%3Fd%23%C3%A9"


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("user", {"id": 3, "slug": "a/b c"}),
        ("user", {"id": -10, "slug": "é"}),
        ("price", {"x": 1e20}),
        ("price", {"x": -0.125}),
        ("file", {"rest": "dir/sub dir/f%.txt"}),
        ("obj", {"id": uuid.uuid4()}),
    ],
)
def test_url_for_round_trips(name: str, params: dict[str, object]) -> None:
    router = make(
        user=("GET", "/users/:id<int>/:slug"),
        price=("GET", "/p/:x<float>"),
        file=("GET", "/files/:rest<path>"),
        obj=("GET", "/o/:id<uuid>"),
    )
    assert router.match("GET", router.url_for(name, **params)).params == params


def test_url_for_errors() -> None:
    router = make(
        user=("GET", "/users/:id<int>"),
        s=("GET", "/s/:name"),
        static=("GET", "/static/*"),
        price=("GET", "/p/:x<float>"),
    )
    with pytest.raises(LookupError, match="no route named 'nope'"):
        router.url_for("nope")
    with pytest.raises(ValueError, match="missing parameter.*id"):
        router.url_for("user")
    with pytest.raises(ValueError, match="unknown parameter.*idd"):
        router.url_for("user", id=1, idd=2)
    for bad in ("abc", 1.5, True, "1 "):
        with pytest.raises(ValueError, match="not a valid <int>"):
            router.url_for("user", id=bad)
    for bad_float in (float("nan"), float("inf"), "x"):
        with pytest.raises(ValueError, match="not a valid <float>"):
            router.url_for("price", x=bad_float)
    with pytest.raises(ValueError, match="must not be empty"):
        router.url_for("s", name="")
    with pytest.raises(ValueError, match="cannot fill a '\\*'"):
        router.url_for("static")


# --- registration errors and freeze ------------------------------------------------


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("", "must start with '/'"),
        ("users", "must start with '/'"),
        ("/a/*/b", "last character"),
        ("/*/", "last character"),
        ("/a**", "last character"),
        ("/a/:x*", "bad parameter"),
        ("/:", "bad parameter"),
        ("/:1abc", "bad parameter"),
        ("/:id.json", "bad parameter"),
        ("/:id<int", "bad parameter"),
        ("/:id<>", "bad parameter"),
        ("/:id<bogus>", "unknown converter <bogus>"),
        ("/:a/:a", "parameter 'a' twice"),
        ("/:a/:a<int>", "parameter 'a' twice"),
        ("/:rest<path>/edit", "must be the last segment"),
    ],
)
def test_bad_patterns_raise_value_error(path: str, reason: str) -> None:
    router = Router()
    with pytest.raises(ValueError, match=reason.replace("*", "\\*")):
        router.add("GET", path, None)
    assert router.routes == []


def test_bad_method_raises_value_error() -> None:
    with pytest.raises(ValueError, match="bad HTTP method"):
        Router().add("GE T", "/", None)


def test_duplicate_route_raises_value_error() -> None:
    router = Router()
    router.add("GET", "/a/:x", None)
    router.add("POST", "/a/:x", None)  # another method is fine
    router.add("GET", "/a/:y", None)  # another pattern is fine (fall-through)
    with pytest.raises(ValueError, match="duplicate route: GET /a/:x"):
        router.add("get", "/a/:x", None)


def test_duplicate_name_raises_value_error() -> None:
    router = Router()
    router.add("GET", "/a", None, name="a")
    with pytest.raises(ValueError, match="duplicate route name 'a'"):
        router.add("GET", "/b", None, name="a")


def test_routes_keep_registration_order_and_fields() -> None:
    router = Router()
    first = router.add("get", "/b/:id<int>", "h1", name="b")
    second = router.add("POST", "/a", "h2")
    assert router.routes == [first, second]
    assert isinstance(first, Route)
    assert (first.method, first.path, first.handler, first.name, first.param_names) == (
        "GET",
        "/b/:id<int>",
        "h1",
        "b",
        ("id",),
    )
    assert second.name is None and second.param_names == ()
    assert "GET /b/:id<int>" in repr(first)


def test_add_after_freeze_raises() -> None:
    router = make(("GET", "/a"))
    with pytest.raises(RuntimeError, match="router is frozen"):
        router.add("GET", "/b", None)
    router.freeze()  # freezing again is harmless
    assert handler(router, "GET", "/a") == "GET /a"


def test_match_before_freeze_raises() -> None:
    router = Router()
    router.add("GET", "/a", None)
    router.add("GET", "/b/:x", None)
    for path in ("/a", "/b/1", "/c"):
        with pytest.raises(RuntimeError, match="not frozen"):
            router.match("GET", path)
        with pytest.raises(RuntimeError, match="not frozen"):
            list(router.iter_matches("GET", path))


def test_empty_router() -> None:
    router = make()
    with pytest.raises(NotFound):
        router.match("GET", "/")
    assert list(router.iter_matches("GET", "/")) == []


# --- scale -------------------------------------------------------------------------


def test_500_routes() -> None:
    rng = random.Random(1234)
    kinds = [
        ("/s{i}/page", "/s{i}/page", {}),
        ("/d{i}/:id<int>", "/d{i}/{i}", {"id": None}),
        ("/api/v1/r{i}/:name/items/:item<int>", "/api/v1/r{i}/n{i}/items/{i}", None),
        ("/f{i}/:rest<path>", "/f{i}/a/b{i}", {"rest": "a/b{i}"}),
        ("/w{i}/*", "/w{i}/x/y", {}),
    ]
    table = []
    for i in range(500):
        pattern, path, _ = kinds[i % len(kinds)]
        table.append((pattern.format(i=i), path.format(i=i), i))
    rng.shuffle(table)
    router = Router()
    for pattern, _, i in table:
        router.add(rng.choice(["GET", "POST"]) if i % 7 else "ANY", pattern, i)
    router.add("GET", "/*", "fallback")
    router.freeze()
    for pattern, path, i in table:
        route = next(r for r in router.routes if r.handler == i)
        method = "POST" if route.method == "ANY" else route.method
        m = router.match(method, path)
        assert m.route is route, (pattern, path)
        if "<int>" in pattern:
            assert i in m.values
        if "<path>" in pattern:
            assert m.params == {"rest": f"a/b{i}"}
        assert [x.route.handler for x in router.iter_matches("GET", path)][-1] == ("fallback")
    assert handler(router, "GET", "/nowhere") == "fallback"
    with pytest.raises(MethodNotAllowed) as info:
        router.match("POST", "/nowhere")
    assert info.value.allowed == ("GET", "HEAD")


def test_resolve_is_match_without_the_match_object() -> None:
    router = make(("GET", "/a"), ("GET", "/u/:id"), ("POST", "/u/:id<int>"))
    assert router.resolve("GET", "/a") == (router.match("GET", "/a").route, None, ())
    route, params, values = router.resolve("GET", "/u/x%20y")
    assert route is router.match("GET", "/u/x%20y").route
    assert params == {"id": "x y"} and values == ("x y",)
    assert router.resolve("POST", "/u/7")[1:] == ({"id": 7}, (7,))
    with pytest.raises(NotFound):
        router.resolve("GET", "/nope")
    with pytest.raises(MethodNotAllowed) as info:
        router.resolve("DELETE", "/a")
    assert info.value.allowed == ("GET", "HEAD")


# --- lookup remembers plain one-parameter matches ------------------------------------


def test_lookup_remembered_matches_are_the_same_and_fresh() -> None:
    router = make(("GET", "/user/:id"), ("GET", "/user/:id/posts"), ("ANY", "/any/:x"),
                  ("GET", "/n/:n<int>"))
    for _ in range(3):  # the first time matched, then remembered
        route, params, values = router.lookup("GET", "/user/a%20b")
        assert route.handler == "GET /user/:id"
        assert params == {"id": "a b"} and values == ("a b",)
        params["id"] = "changed"  # a request's own dict: the next one is not affected
        assert router.lookup("GET", "/user/a%20b/posts")[1] == {"id": "a b"}
        assert router.lookup("POST", "/any/1")[1] == {"x": "1"}
        assert router.lookup("GET", "/n/7")[1] == {"n": 7}  # converted: not remembered
        assert router.lookup("GET", "/user/") is None
        assert router.lookup("POST", "/user/1") is None


def test_lookup_memory_is_bounded() -> None:
    router = make(("GET", "/user/:id"))
    for i in range(2000):
        assert router.lookup("GET", f"/user/{i}")[1] == {"id": str(i)}
    assert router.lookup("GET", "/user/" + "x" * 5000)[1] == {"id": "x" * 5000}
    for i in range(2000):  # after the table was emptied, still right
        assert router.lookup("GET", f"/user/{i}")[2] == (str(i),)
