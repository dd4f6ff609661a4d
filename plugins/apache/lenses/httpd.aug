(* Apache HTTPD lens for Augeas, corrected for the letsencrypt Apache plugin.

Based on: the Httpd lens shipped with Augeas 1.14 (lenses/httpd.aug, LGPL v2+),
  by David Lutterkort, Francis Giraldeau and Raphael Pinson.

The module keeps the name Httpd. It is loaded only from the plugin's own load
path (plugins/apache/lenses), with module autoloading off; it therefore has no
filter and no autoload transform. The tree differs from the stock lens's in
two ways (7): a directive is a node labelled with its name (`ServerName`, with
`arg` children) instead of `directive` with the name as value, and a section
node has the value ">" (which tells it from a directive of the same name).

Changes, each checked against apache2 2.4 (`apache2 -t` accepts the syntax)
and pinned by tests/unit/plugins/apache/test_apache_lens.py:

  1. Section arguments may be the comparison operators of <IfVersion> that
     contain '>': `<IfVersion > 2.3>`, `<IfVersion !>= 2.4>`, `<IfVersion !> 2>`.
     The stock lens knows only `=`, `==`, `<=`, `>=`.
  2. A bare section argument may contain quotes after its first character:
     `<IfModule mod_rewrite.c="">` (certbot issues #3281, #4025).
  3. The last section argument may open a double quote that it never closes,
     which Apache reads up to the final '>': `<Location ~ "/(.+)/adm>`
     (augeas issue #428, certbot issue #3325).
  4. A bare directive argument may start with '{' when it is not an SSLRequire
     word list: `Header set Report-To {"group":"default","max_age":1}`, `{}`.
     The stock lens takes every '{' for a word list and fails on JSON values.
     (Nested JSON objects are still rejected: see brace_bare.)
  5. Indentation may contain continuation lines: a line holding only blanks and
     a trailing backslash joins the next line, as Apache reads it.
  6. Directives and comments that Augeas creates inside a section are indented
     by four spaces (the default of a `del` only matters for new nodes; parsing
     is unchanged). New sections themselves start at column 0.
  7. Directive nodes are labelled with the directive's name. Augeas hands the
     original formatting of a removed or shifted node to the next node with the
     same label, so with one label for every directive, removing the first
     directive of a section re-formatted all the others (continuation lines
     lost, indentation moved); now only later directives of the same name are
     affected.
*)

module Httpd =

(******************************************************************
 *                           Utilities lens
 *****************************************************************)
let dels (s:string)     = del s s

(* The continuation sequence that indicates that we should consider the
 * next line part of the current line *)
let cont = /\\\\\r?\n/

(* Whitespace within a line: space, tab, and the continuation sequence *)
let ws = /[ \t]/ | cont

(* Any possible character - '.' does not match \n *)
let any = /(.|\n)/

(* Any character preceded by a backslash *)
let esc_any = /\\\\(.|\n)/

(* Newline sequence - both for Unix and DOS newlines *)
let nl = /\r?\n/

(* Whitespace at the end of a line *)
let eol = del (ws* . nl) "\n"

(* deal with continuation lines *)
let sep_spc             = del ws+ " "
let sep_osp             = del ws* ""
let sep_eq              = del (ws* . "=" . ws*) "="

let nmtoken             = /[a-zA-Z:_][a-zA-Z0-9:_.-]*/
let word                = /[a-z][a-z0-9._-]*/i

(* A complete line that is either just whitespace or a comment that only
 * contains whitespace *)
let empty = [ del (ws* . /#?/ . ws* . nl) "\n" ]

(* (5): blanks and continuation lines before a directive, section or comment *)
let indent              = del /([ \t]|\\\\\r?\n)*/ ""
(* (6): the same, but new nodes inside a section get four spaces *)
let indent_in           = del /([ \t]|\\\\\r?\n)*/ "    "

(* A comment that is not just whitespace. We define it in terms of the
 * things that are not allowed as part of such a comment:
 *   1) Starts with whitespace
 *   2) Ends with whitespace, a backslash or \r
 *   3) Unescaped newlines
 *)
let comment_with (start:string) =
  let comment_start = del (ws* . "#" . ws* ) start in
  let unesc_eol = /[^\]?/ . nl in
  let w = /[^\t\n\r \\]/ in
  let r = /[\r\\]/ in
  let s = /[\t\r ]/ in
  (*
   * we'd like to write
   * let b = /\\\\/ in
   * let t = /[\t\n\r ]/ in
   * let x = b . (t? . (s|w)* ) in
   * but the definition of b depends on commit 244c0edd in 1.9.0 and
   * would make the lens unusable with versions before 1.9.0. So we write
   * x out which works in older versions, too
   *)
  let x = /\\\\[\t\n\r ]?[^\n\\]*/ in
  let line = ((r . s* . w|w|r) . (s|w)* . x*|(r.s* )?).w.(s*.w)* in
  [ label "#comment" . comment_start . store line . eol ]

let comment    = comment_with "# "
(* (6): a comment created inside a section *)
let comment_in = comment_with "    # "

(* (2): a bare section argument starts with anything but a quote, then may
 * hold quotes; a backslash escapes the next character (not a newline or '>') *)
let char_arg_sec  = /([^\\ '"\t\r\n>]|\\\\[^\r\n>])([^\\ \t\r\n>]|\\\\[^\r\n>])*/
let char_arg_wl   = /([^\\ '"},\t\r\n]|[^ '"},\t\r\n]+[^\\ '"},\t\r\n])/

let dquot =
     let no_dquot = /[^"\\\r\n]/
  in /"/ . (no_dquot|esc_any)* . /"/
let dquot_msg =
     let no_dquot = /([^ \t"\\\r\n]|[^"\\\r\n]+[^ \t"\\\r\n])/
  in /"/ . (no_dquot|esc_any)* . no_dquot

let squot =
     let no_squot = /[^'\\\r\n]/
  in /'/ . (no_squot|esc_any)* . /'/
let comp = /[<>=]?=/

(******************************************************************
 *                            Attributes
 *****************************************************************)

(* The arguments for a directive come in two flavors: quoted with single or
 * double quotes, or bare. Bare arguments may not start with a single or
 * double quote; since we also treat "word lists" special, i.e. lists
 * enclosed in curly braces, bare arguments may not start with those,
 * either.
 *
 * Bare arguments may not contain unescaped spaces, but we allow escaping
 * with '\\'. Quoted arguments can contain anything, though the quote must
 * be escaped with '\\'.
 *)
let bare = /([^{"' \t\n\r]|\\\\.)([^ \t\n\r]|\\\\.)*[^ \t\n\r\\]|[^{"' \t\n\r\\]/

let arg_quoted = [ label "arg" . store (dquot|squot) ]
let arg_bare = [ label "arg" . store bare ]

(* message argument starts with " but ends at EOL *)
let arg_dir_msg = [ label "arg" . store dquot_msg ]
let arg_wl  = [ label "arg" . store (char_arg_wl+|dquot|squot) ]

(* (4): a bare argument that starts with '{' and is not a word list: '{}',
 * or a token (no blanks, ending in '}') where a quoted string touches
 * something other than '{', ',' or '}', as in a JSON header value
 * '{"group":"default","max_age":1}'. A word list never has that, so the two
 * stay apart. *)
let brace_bare =
     let q = /"([^"\\ \t\n\r]|\\\\[^ \t\n\r])*"|'([^'\\ \t\n\r]|\\\\[^ \t\n\r])*'/ in
     let u = /[^ \t\n\r"'{}\\]|\\\\[^ \t\n\r{}]/ in
     let seg = (u|q)* in
     let mixed = q . /[^ \t\n\r"',{}]/ | /[^ \t\n\r"',{}]/ . q in
  /\{\}/ | /\{/ . seg . mixed . seg . /\}/
let arg_brace = [ label "arg" . store brace_bare ]

(* comma-separated wordlist as permitted in the SSLRequire directive *)
let arg_wordlist =
     let wl_start = dels "{" in
     let wl_end   = dels "}" in
     let wl_sep   = del /[ \t]*,[ \t]*/ ", "
  in [ label "wordlist" . wl_start . arg_wl . (wl_sep . arg_wl)* . wl_end ]

let argv (l:lens) = l . (sep_spc . l)*

(* the arguments of a directive. We use this once we have parsed the name
 * of the directive, and the space right after it. When dir_args is used,
 * we also know that we have at least one argument. We need to be careful
 * with the spacing between arguments: quoted arguments and word lists do
 * not need to have space between them, but bare arguments do.
 *
 * Apache apparently is also happy if the last argument starts with a double
 * quote, but has no corresponding closing duoble quote, which is what
 * arg_dir_msg handles
 *)
let dir_args =
  let arg_nospc = arg_quoted|arg_wordlist in
  let arg_spc = arg_bare|arg_brace in
  (arg_spc . sep_spc | arg_nospc . sep_osp)* . (arg_spc|arg_nospc|arg_dir_msg)

(* (7): a directive's node is labelled with its name (the stock lens labels every
 * directive "directive" and stores the name as its value). Augeas gives back the
 * original formatting of a node to the next node with the same label, so with
 * one label for all directives, removing or inserting one reformatted every
 * directive after it in the same section; now only those with the same name. *)
let directive_name = word - /arg|wordlist|perl/i
let directive_with (ind:lens) =
  [ ind . key directive_name .  (sep_spc . dir_args)? . eol ]
let directive    = directive_with indent
let directive_in = directive_with indent_in

let arg_sec = [ label "arg" . store (char_arg_sec|comp|dquot|squot) ]

(* (1): the comparison operators of <IfVersion> that contain '>' and are not
 * in comp ('>', '!>', '!>='). Such an operator is never the last argument: a
 * '>' there closes the section line, as in `<Directory "/a" >`. *)
let arg_gt = [ label "arg" . store /!?>|!>=/ ]

(* (3): the last argument of a section may open a double quote it never
 * closes; Apache reads it up to the final '>' *)
let arg_sec_open =
     let no_dquot = /[^"\\\r\n>]|\\\\[^\r\n>]/ in
     let last = /[^ \t"\\\r\n>]|\\\\[^\r\n>]/
  in [ label "arg" . store (/"/ . (no_dquot* . last)?) ]

let section_with (ind:lens) (body:lens) =
    (* opt_eol includes empty lines *)
    let opt_eol = del /([ \t]*#?[ \t]*\r?\n)*/ "\n" in
    let args = ((arg_sec|arg_gt) . sep_spc)* . (arg_sec|arg_sec_open) in
    let inner = (sep_spc . args)? . sep_osp .
             store ">" . opt_eol . ((body|comment_in) . (body|empty|comment_in)*)? .
             ind . dels "</" in
    let kword = key (word - /perl/i) in
    let dword = del (word - /perl/i) "a" in
        [ ind . dels "<" . square kword inner dword . del />[ \t\n\r]*/ ">\n" ]

let perl_section_with (ind:lens) = [ ind . label "Perl" . del /<perl>/i "<Perl>"
                   . store /[^<]*/
                   . del /<\/perl>/i "</Perl>" . eol ]

(* (6): directives and comments created inside a section get indent_in. One
 * recursive lens only: a separate lens for nested sections (to indent new
 * sections too) makes Augeas 1.14 crash when it saves. *)
let rec content = section_with indent (content|directive_in)
                | perl_section_with indent

let lns = (content|directive|comment|empty)*
