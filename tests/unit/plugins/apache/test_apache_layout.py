"""Added lines get the indentation of their neighbours; every other byte stays."""

from __future__ import annotations

from plugins.apache.layout import reindent


def test_lines_added_at_the_start_of_a_section_take_the_next_lines_indentation() -> None:
    original = "<VirtualHost *:80>\n\t\tServerName a\n</VirtualHost>\n"
    edited = "<VirtualHost *:80>\n    Include x.conf\n\t\tServerName a\n</VirtualHost>\n"
    assert reindent(original, edited) == "<VirtualHost *:80>\n\t\tInclude x.conf\n\t\tServerName a\n</VirtualHost>\n"


def test_lines_added_at_the_end_take_the_last_childs_indentation_even_after_a_nested_section() -> None:
    original = "<VirtualHost *:80>\n  <Directory />\n    Require all denied\n  </Directory>\n</VirtualHost>\n"
    edited = original.replace("</VirtualHost>", "    Header set X y\n    RewriteEngine on\n</VirtualHost>")
    assert reindent(original, edited) == original.replace(
        "</VirtualHost>", "  Header set X y\n  RewriteEngine on\n</VirtualHost>")


def test_a_line_added_to_an_empty_section_is_indented_one_step_more() -> None:
    original = "\t<IfModule mod_ssl.c>\n\t</IfModule>\n"
    assert reindent(original, "\t<IfModule mod_ssl.c>\nSSLStaplingCache x\n\t</IfModule>\n") == \
        "\t<IfModule mod_ssl.c>\n\t    SSLStaplingCache x\n\t</IfModule>\n"


def test_changed_and_kept_lines_are_left_alone_byte_for_byte() -> None:
    original = "# c\r\nListen 80   \r\n\tSSLEngine on\r\n"
    edited = "# c\r\nListen 80   \r\n\tSSLEngine off\r\n"
    assert reindent(original, edited) == edited


def test_where_lines_were_replaced_only_the_new_directives_are_reindented() -> None:
    original = "<VirtualHost *:443>\n  SSLCertificateFile old.pem\n  SSLCertificateChainFile c.pem\n</VirtualHost>\n"
    edited = ("<VirtualHost *:443>\n  SSLCertificateFile   new.pem\n    Header set X y\n</VirtualHost>\n")
    assert reindent(original, edited) == \
        "<VirtualHost *:443>\n  SSLCertificateFile   new.pem\n  Header set X y\n</VirtualHost>\n"
