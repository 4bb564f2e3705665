"""Cell texts that trip exports: spreadsheet formulas, quotes, commas, line breaks, non-ASCII, tabs.
The export encoding tests of the scores and of the collection runs share them."""

AWKWARD = [
    '=HYPERLINK("http://x", "click")',
    "+1 234",
    "-42",
    "@SUM(A1)",
    "'quoted",
    'a "quote", a comma',
    "line one\nline two\r\nthree",
    "ünïcødé ☃ 日本語 \u2028",
    "\tindented",
]
