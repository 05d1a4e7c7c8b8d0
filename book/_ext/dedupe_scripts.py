"""Sphinx extension: drop duplicate inline scripts from each page.

With Jupyter Book 1 and Thebe enabled, sphinx-thebe adds its inline configuration script twice, and the second
``const THEBE_JS_URL`` declaration raises a SyntaxError in the browser. Keeping the first copy of each script
fixes it without touching the installed packages.
"""


def _dedupe(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        # The copies differ only in filename None vs "": compare inline scripts by their body.
        attrs = getattr(js, "attributes", {})
        key = (getattr(js, "filename", None) or "", attrs.get("body"), attrs.get("priority"))
        if key in seen:
            continue
        seen.add(key)
        kept.append(js)
    context["script_files"] = kept


def setup(app):
    # Early: a later handler may return a template name, which stops the event (emit_firstresult).
    app.connect("html-page-context", _dedupe, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
