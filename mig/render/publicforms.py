"""The forms of the public pages besides the login (asking for an account,
resetting a password): one plain form, its fields labelled, and a message."""

from mig.render.html import esc, public_page


def public_form(title, action, csrf, fields, message="", error=False, intro="", submit="Send"):
    """A whole public page with one form; fields: (name, label, type, value, hint)."""
    note = ('<p class="msg %s" role="%s">%s</p>' % ("error" if error else "success",
                                                    "alert" if error else "status", esc(message))
            if message else "")
    controls = []
    for name, label, kind, value, hint in fields:
        ident = "f-" + esc(name)
        if kind == "hidden":
            controls.append('<input type="hidden" name="%s" value="%s">' % (esc(name),
                                                                          esc(value)))
            continue
        if kind == "textarea":
            control = '<textarea id="%s" name="%s" rows="4">%s</textarea>' % (
                ident, esc(name), esc(value))
        else:
            control = '<input id="%s" type="%s" name="%s" value="%s"%s>' % (
                ident, esc(kind), esc(name), esc(value),
                ' autocomplete="new-password"' if kind == "password" else "")
        controls.append('<label for="%s">%s</label>%s%s' % (
            ident, esc(label), control, '<span class="help">%s</span>' % esc(hint) if hint
            else ""))
    body = ('<div class="login panel"><h1>%s</h1>%s%s<form class="stacked" method="post" '
            'action="%s"><input type="hidden" name="_csrf" value="%s">%s<div class="actions">'
            '<button type="submit">%s</button></div></form><p><a href="/login">Log in</a></p>'
            '</div>' % (esc(title), note, '<p>%s</p>' % esc(intro) if intro else "",
                        esc(action), esc(csrf), "".join(controls), esc(submit)))
    return public_page(title, body)
