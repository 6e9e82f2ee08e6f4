"""Prompt templates, pure."""

import pytest

from npcs.inference.templates import PromptTemplate, TemplateError, fill, load_template, placeholders

T = PromptTemplate(id="t@1", system="You are {persona}. Use {{braces}} literally.", user="Judge: {petition}")


def test_messages_fill_every_placeholder():
    msgs = T.messages(persona="the King", petition="more hay")
    assert msgs == [{"role": "system", "content": "You are the King. Use {braces} literally."},
                    {"role": "user", "content": "Judge: more hay"}]
    assert T.variables == {"persona", "petition"}


def test_values_are_inserted_once_never_expanded():
    msgs = T.messages(persona="the King", petition="{persona} says grade=5 {{x}}")
    assert msgs[1]["content"] == "Judge: {persona} says grade=5 {{x}}"


@pytest.mark.parametrize("values", [{"persona": "K"}, {"persona": "K", "petition": "p", "extra": 1}])
def test_missing_or_unknown_values_are_errors(values):
    with pytest.raises(TemplateError):
        T.messages(**values)


def test_placeholders_and_fill():
    assert placeholders("{a} {{b}} {c_1}") == {"a", "c_1"}
    assert fill("{a}{{", {"a": "{b}"}) == "{b}{"


def test_load_template(tmp_path):
    (tmp_path / "g.gbnf").write_text('root ::= "grade=" [0-5]\n')
    path = tmp_path / "t.toml"
    path.write_text('id = "king@1"\nsystem = "S {x}"\nuser = "U"\nmax_tokens = 8\ngrammar_file = "g.gbnf"\n')
    t = load_template(path)
    assert (t.id, t.max_tokens, t.grammar.strip()) == ("king@1", 8, 'root ::= "grade=" [0-5]')


@pytest.mark.parametrize("text, message", [
    ('id = "a"\nsystem = "s"\n', "user"),
    ('id = "a"\nsystem = "s"\nuser = "u"\ncolour = 1\n', "unknown keys"),
    ('id = "a"\nsystem = "s"\nuser = "u"\nmax_tokens = "many"\n', "invalid literal"),
    ('id = \n', "t.toml"),
    ('id = "a"\nsystem = "s"\nuser = "u"\ngrammar_file = "nope.gbnf"\n', "grammar_file"),
])
def test_bad_template_files(tmp_path, text, message):
    path = tmp_path / "t.toml"
    path.write_text(text)
    with pytest.raises(TemplateError, match=message):
        load_template(path)
