"""The command line: ``serve``, ``user ...`` and ``resource ...``; the only place
errors become exit codes."""

import argparse
import getpass
import json
import logging
import signal
import sys
import threading

from mig import __version__
from mig import config as cfg
from mig.errors import AuthError, ClientError, ConfigError, FileNotFound, MigError


def _state_arg(parser):
    parser.add_argument("--state", metavar="DIR", default=None,
                        help="state folder (default: $MIG_STATE or ./mig-state)")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="migappliance",
        description="The MiG appliance: a Minimum intrusion Grid in one file.")
    parser.add_argument("--version", action="version", version="migappliance " + __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    serve = sub.add_parser("serve", help="run the grid (initialises the state folder on first run)",
                           description="Run the HTTPS portal, scheduler and local resource.")
    _state_arg(serve)
    serve.add_argument("--port", type=int, default=None, help="HTTPS port (default 8443)")
    serve.add_argument("--bind", default=None, help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--hostname", default=None,
                       help="name clients use for this host; put in the server certificate")
    serve.add_argument("--policy", default=None, dest="scheduler_policy",
                       help="scheduler policy: FIFO, FirstFit, BestFit or FairFit")
    serve.add_argument("--verbose", action="store_true", help="log every request")

    user = sub.add_parser("user", help="manage accounts", description="Manage user accounts.")
    usub = user.add_subparsers(dest="user_command", metavar="ACTION")
    usub.required = True
    add = usub.add_parser("add", help="create an account with certificate and API token")
    _state_arg(add)
    add.add_argument("name")
    add.add_argument("--password", default=None, help="login password (default: random)")
    add.add_argument("--admin", action="store_true", help="make the user an administrator")
    add.add_argument("--json", action="store_true", help="print one JSON object")
    lst = usub.add_parser("list", help="list accounts")
    _state_arg(lst)
    lst.add_argument("--json", action="store_true")
    tok = usub.add_parser("token", help="issue a new API token for a user")
    _state_arg(tok)
    tok.add_argument("name")
    tok.add_argument("--label", default="cli")
    pw = usub.add_parser("passwd", help="set a user's password")
    _state_arg(pw)
    pw.add_argument("name")
    pw.add_argument("--password", default=None, help="new password (default: prompt)")
    _resource_parser(sub)
    return parser


def _resource_parser(sub):
    res = sub.add_parser("resource", help="register and manage remote resources",
                         description="Register resources in MiG's configuration format and "
                                     "manage them; safe while the grid runs, which follows "
                                     "within a scheduler tick.")
    rsub = res.add_subparsers(dest="resource_command", metavar="ACTION")
    rsub.required = True

    def action(name, text, *positional):
        parser = rsub.add_parser(name, help=text)
        _state_arg(parser)
        for arg in positional:
            parser.add_argument(arg, **({"nargs": "?", "default": ""} if arg == "exe" else {}))
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        return parser
    tofu = ("when the configuration has no HOSTKEY: fetch the host's key with ssh-keyscan "
            "and pin it (trust on first use)")
    radd = action("add", "check and register a resource configuration")
    radd.add_argument("--conf", required=True, help="the configuration file")
    radd.add_argument("--owner", required=True, help="the user who owns the resource")
    radd.add_argument("--trust-on-first-use", action="store_true", help=tofu)
    action("list", "list registered resources")
    action("show", "show one resource's configuration", "name")
    redit = action("edit", "replace a resource's configuration (the name stays)", "name")
    redit.add_argument("--conf", required=True, help="the new configuration file")
    redit.add_argument("--trust-on-first-use", action="store_true", help=tofu)
    action("start", "start a resource, or one exe unit: it gets jobs again", "name", "exe")
    action("stop", "stop a resource, or one exe unit: no new jobs; running jobs run to "
                   "their end", "name", "exe")
    owner = action("owner", "add or remove an owner of a resource")
    owner.add_argument("owner_action", choices=("add", "remove"))
    owner.add_argument("name")
    owner.add_argument("user")
    action("remove", "remove a resource (jobs running there run to their end)", "name")
    action("status", "check that the grid can log in to the resource", "name")
    action("clean", "stop and remove job folders left on the resource", "name")


LATER = " (the running grid follows within a scheduler tick)"


def _resource_summary(record):
    from mig.core.resourcedb import stopped_units
    conf = record["CONF"]
    return {"name": record["NAME"], "owners": record["OWNERS"], "host": conf["HOSTURL"],
            "lrms": conf["LRMSTYPE"], "exe_units": [u["name"] for u in conf["EXECONFIG"]],
            "stopped": sorted(stopped_units(record))}


def _read_conf(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _resource_add(args, resources, config):
    from mig.execute.sshremote import ensure_grid_key
    record = resources.add(_read_conf(args.conf), args.owner,
                           trust_on_first_use=args.trust_on_first_use)
    summary = dict(_resource_summary(record), grid_public_key=ensure_grid_key(config.path("ssh")))
    return summary, ("registered %s (exe units: %s); authorize the grid's key %s for %s on %s%s"
                     % (record["NAME"], ", ".join(summary["exe_units"]),
                        summary["grid_public_key"], record["CONF"]["MIGUSER"],
                        record["CONF"]["HOSTURL"], LATER))


def _resource_list(args, resources, config):
    rows = [_resource_summary(resources.get(n)) for n in resources.names()]
    return rows, "\n".join("%s\t%s\t%s\t%s" % (
        r["name"], r["host"], ",".join(r["owners"]),
        "stopped: " + ",".join(r["stopped"]) if r["stopped"] else "-") for r in rows)


def _resource_show(args, resources, config):
    record = resources.get(args.name)
    return (dict(_resource_summary(record), conf=record["CONF"], text=record["TEXT"]),
            record["TEXT"].rstrip("\n"))


def _resource_edit(args, resources, config):
    record = resources.update(args.name, _read_conf(args.conf),
                              trust_on_first_use=args.trust_on_first_use)
    return _resource_summary(record), "%s changed%s" % (args.name, LATER)


def _resource_start_stop(args, resources, config):
    stop = args.resource_command == "stop"
    record = resources.set_stopped(args.name, args.exe, stop)
    what = "%s_%s" % (args.name, args.exe) if args.exe else "%s (all exe units)" % args.name
    return _resource_summary(record), (
        "stopped %s: no new jobs go there; jobs running there run to their end%s" % (what, LATER)
        if stop else "started %s%s" % (what, LATER))


def _resource_owner(args, resources, config):
    change = resources.add_owner if args.owner_action == "add" else resources.remove_owner
    summary = _resource_summary(change(args.name, args.user))
    return summary, "owners of %s: %s" % (args.name, ", ".join(summary["owners"]))


def _resource_remove(args, resources, config):
    summary = _resource_summary(resources.get(args.name))
    resources.remove(args.name)
    return summary, ("removed %s: no new jobs go there; jobs running there run to their end%s"
                     % (args.name, LATER))


def _resource_login(args, resources, config):
    """status and clean: log in over ssh as the grid does."""
    from mig.execute import sshcontrol
    from mig.execute.sshremote import Remote, ensure_grid_key
    record = resources.get(args.name)
    ensure_grid_key(config.path("ssh"))
    remote = Remote(record["NAME"], record["CONF"], config.path("ssh"))
    if args.resource_command == "status":
        sshcontrol.check(remote)
        status = "reachable"
    else:
        sshcontrol.clean(remote)
        status = "leftover jobs stopped, job folders removed"
    return {"name": record["NAME"], "status": status}, "%s: %s" % (record["NAME"], status)


RESOURCE_ACTIONS = {"add": _resource_add, "list": _resource_list, "show": _resource_show,
                    "edit": _resource_edit, "start": _resource_start_stop,
                    "stop": _resource_start_stop, "owner": _resource_owner,
                    "remove": _resource_remove, "status": _resource_login,
                    "clean": _resource_login}


def cmd_resource(args):
    """Every resource command works on the records only (the running grid follows
    them), as the host's operator: no owner check."""
    from mig.appliance import init_state
    from mig.core.resourcedb import ResourceDB
    from mig.core.users import UserDB
    from mig.execute.sshcontrol import scan_host_key
    from mig.store.pickledb import PickleStore
    config = cfg.load(args.state)
    init_state(config)
    store = PickleStore(config.path("db"))
    resources = ResourceDB(store, UserDB(store, config), scan_host_key)
    summary, message = RESOURCE_ACTIONS[args.resource_command](args, resources, config)
    print(json.dumps(summary) if args.json else message)
    return 0


def _open_users(state):
    from mig.appliance import init_state
    from mig.core.users import UserDB
    from mig.store.pickledb import PickleStore
    config = cfg.load(state)
    init_state(config)
    return UserDB(PickleStore(config.path("db")), config)


def cmd_user(args):
    users = _open_users(args.state)
    if args.user_command == "add":
        made = users.add(args.name, password=args.password, admin=args.admin)
        info = {"name": made["name"], "dn": made["dn"], "cert": made["cert"],
                "key": made["key"], "p12": made["p12"], "p12_password": made["p12_password"],
                "ca": made["ca"], "token": made["token"], "home": made["home"],
                "password": made["password_plain"]}
        if args.json:
            print(json.dumps(info))
        else:
            for key, value in info.items():
                print("%-13s %s" % (key + ":", value))
    elif args.user_command == "list":
        rows = [{"name": n, "dn": users.get(n)["dn"], "admin": users.get(n)["admin"]}
                for n in users.names()]
        if args.json:
            print(json.dumps(rows))
        else:
            for row in rows:
                print("%s%s\t%s" % (row["name"], " (admin)" if row["admin"] else "", row["dn"]))
    elif args.user_command == "token":
        print(users.new_token(args.name, args.label))
    elif args.user_command == "passwd":
        password = args.password
        if password is None:
            password = getpass.getpass("New password for %s: " % args.name)
            if password != getpass.getpass("Again: "):
                raise ClientError("the passwords differ; nothing changed")
        if len(password) < 8:
            raise ClientError("a password needs at least 8 characters; nothing changed")
        users.set_password(args.name, password)
        print("password changed for %s" % args.name)
    return 0


def cmd_serve(args):
    from mig.appliance import Grid, init_state
    from mig.web.server import GridHTTPServer, tls_context
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = cfg.load(args.state, port=args.port, bind=args.bind, hostname=args.hostname,
                      scheduler_policy=args.scheduler_policy)
    init_state(config)
    grid = Grid(config)
    server = GridHTTPServer((config.bind, config.port), grid, tls_context(*grid.tls_files),
                            config.handshake_timeout, config.idle_timeout)
    port = server.server_address[1]
    url = config.url.rsplit(":", 1)[0] + ":%d" % port
    grid.public_url = url  # what notifications link to (the port may have been 0)
    grid.start()

    def stop(_signum, _frame):
        threading.Thread(target=server.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("MiG appliance %s serving %s" % (__version__, url), flush=True)
    print("state folder: %s" % config.state_dir)
    print("admin credentials: %s" % config.path("admin-credentials.txt"))
    if "local" in grid.executors and config.local_resource:
        print(grid.executors["local"].summary())
    print("try: curl --cacert %s -H \"Authorization: Bearer $(sed -n 's/^token: //p' %s)\" "
          "'%s/cgi-bin/jobstatus.py?output_format=txt'"
          % (config.path("ca", "ca.crt"), config.path("admin-credentials.txt"), url), flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
        grid.stop()
        print("MiG appliance stopped", flush=True)
    return 0


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return cmd_serve(args)
        if args.command == "resource":
            return cmd_resource(args)
        return cmd_user(args)
    except MigError as exc:
        print("error: %s" % exc.message, file=sys.stderr)
        return exit_status(exc)
    except OSError as exc:
        print("error: %s" % exc, file=sys.stderr)
        return EXIT_FAILED


EXIT_FAILED, EXIT_USAGE, EXIT_REFUSED, EXIT_DENIED, EXIT_NOT_FOUND = 1, 2, 3, 4, 5


def exit_status(error):
    """The command's exit status for an error, by kind (docs/admin.md): 1 the
    appliance, the host or a resource failed; 2 the command line is wrong
    (argparse); 3 a value or request was refused; 4 not allowed; 5 no such file."""
    for kind, status in ((AuthError, EXIT_DENIED), (FileNotFound, EXIT_NOT_FOUND),
                         (ClientError, EXIT_REFUSED), (ConfigError, EXIT_REFUSED)):
        if isinstance(error, kind):
            return status
    return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())

