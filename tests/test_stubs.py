"""The hand-written stub of the compiled module lists exactly its public API."""

import ast
import inspect
from pathlib import Path

import orderbook
from orderbook import book

STUB = Path(book.__file__).with_name("book.pyi")


def _stub_members(class_name):
    tree = ast.parse(STUB.read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name)
    return {n.name for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def test_stub_names_every_public_member_of_the_compiled_book():
    runtime = {name for name in dir(book.OrderBook)
               if not name.startswith("_") or name in ("__init__", "__contains__", "__copy__",
                                                       "__deepcopy__")}
    assert _stub_members("OrderBook") == runtime


def test_stub_signatures_match_the_compiled_methods():
    tree = ast.parse(STUB.read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "OrderBook")
    for node in cls.body:
        if not isinstance(node, ast.FunctionDef) or node.name.startswith("__"):
            continue
        member = inspect.getattr_static(book.OrderBook, node.name)
        if isinstance(member, property) or not callable(member):
            continue
        runtime = list(inspect.signature(getattr(book.OrderBook, node.name)).parameters)
        stub = [a.arg for a in node.args.args + node.args.kwonlyargs]
        assert stub == runtime, node.name


def test_engine_and_reference_offer_the_same_public_api():
    from orderbook import reference

    def public(cls):
        return {n for n in dir(cls()) if not n.startswith("_")}

    assert public(orderbook.OrderBook) == public(reference.OrderBook)
