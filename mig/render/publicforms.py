"""The forms of the public pages: the login, asking for an account and
resetting a password (one plain form, its fields labelled, and a message)."""

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


def login_panel(message, csrf, next_path, user, credentials_path):
    """The login form (public page body); message: why the last try failed."""
    error = '<p class="msg error" role="alert">%s</p>' % esc(message) if message else ""
    return (
        '<div class="login panel"><h1>MiG appliance</h1>%s'
        '<form class="stacked" method="post" action="/login">'
        '<input type="hidden" name="_csrf" value="%s">'
        '<input type="hidden" name="next" value="%s">'
        '<label for="f-user">User name</label>'
        '<input id="f-user" type="text" name="user" value="%s" autocomplete="username" autofocus>'
        '<label for="f-password">Password</label>'
        '<input id="f-password" type="password" name="password" autocomplete="current-password">'
        '<div class="actions"><button type="submit">Log in</button></div></form>'
        '<p><a href="/signup">Ask for an account</a> · <a href="/pwreset">Forgot your '
        'password?</a></p>'
        '<p class="muted">First time here? Log in as <strong>admin</strong> with the password '
        'in <code>%s</code> on the appliance host, then add users with '
        '<code>python3 migappliance.py user add NAME</code>. A browser with a certificate '
        'of this grid is logged in automatically.</p></div>'
        % (error, esc(csrf), esc(next_path), esc(user), esc(credentials_path)))
