"""The command line: ``serve`` and ``user ...``; the only place errors become exit codes."""

import argparse
import getpass
import json
import logging
import signal
import sys
import threading

from mig import __version__
from mig import config as cfg
from mig.core.certs import CertError
from mig.errors import MigError


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
    res = sub.add_parser("resource", help="register remote resources",
                         description="Register resources in MiG's configuration format.")
    rsub = res.add_subparsers(dest="resource_command", metavar="ACTION")
    rsub.required = True
    radd = rsub.add_parser("add", help="check and register a resource configuration")
    _state_arg(radd)
    radd.add_argument("--conf", required=True, help="the configuration file")
    radd.add_argument("--owner", required=True, help="the user who owns the resource")
    radd.add_argument("--json", action="store_true", help="print one JSON object")
    rlist = rsub.add_parser("list", help="list registered resources")
    _state_arg(rlist)
    rlist.add_argument("--json", action="store_true")
    rshow = rsub.add_parser("show", help="show one resource's configuration")
    _state_arg(rshow)
    rshow.add_argument("name")
    rshow.add_argument("--json", action="store_true")
    for action, text in (("status", "check that the grid can log in to the resource"),
                         ("clean", "remove job folders left on the resource")):
        extra = rsub.add_parser(action, help=text)
        _state_arg(extra)
        extra.add_argument("name")
    return parser


def cmd_resource(args):
    from mig.appliance import init_state
    from mig.core.resourcedb import ResourceDB
    from mig.core.users import UserDB
    from mig.store.pickledb import PickleStore
    config = cfg.load(args.state)
    init_state(config)
    store = PickleStore(config.path("db"))
    resources = ResourceDB(store)
    if args.resource_command == "add":
        if not UserDB(store, config).exists(args.owner):
            raise MigError("no such user: %s" % args.owner)
        with open(args.conf, encoding="utf-8") as handle:
            record = resources.add(handle.read(), args.owner)
        from mig.execute.ssh import ensure_grid_key
        summary = {"name": record["NAME"], "owners": record["OWNERS"],
                   "exe_units": [u["name"] for u in record["CONF"]["EXECONFIG"]],
                   "lrms": record["CONF"]["LRMSTYPE"],
                   "grid_public_key": ensure_grid_key(config.path("ssh"))}
        print(json.dumps(summary) if args.json else
              "registered %s (exe units: %s); authorize the grid's key %s for %s on %s; "
              "restart the grid to use it" % (record["NAME"], ", ".join(summary["exe_units"]),
                                              summary["grid_public_key"],
                                              record["CONF"]["MIGUSER"], record["CONF"]["HOSTURL"]))
    elif args.resource_command == "list":
        rows = [{"name": n, "owners": resources.get(n)["OWNERS"],
                 "host": resources.get(n)["CONF"]["HOSTURL"]} for n in resources.names()]
        print(json.dumps(rows) if args.json else "\n".join(
            "%s\t%s\t%s" % (r["name"], r["host"], ",".join(r["owners"])) for r in rows))
    elif args.resource_command in ("status", "clean"):
        import shlex
        import subprocess
        from mig.execute.ssh import Remote, ensure_grid_key
        record = resources.get(args.name)
        ensure_grid_key(config.path("ssh"))
        remote = Remote(record["NAME"], record["CONF"], config.path("ssh"))
        command = "true" if args.resource_command == "status" else \
            "rm -rf %s/job-*" % shlex.quote(remote.home)
        result = subprocess.run(remote.ssh(command), capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise MigError("%s: %s" % (record["NAME"], (result.stderr.strip().splitlines()
                                                       or ["ssh exit code %d" % result.returncode])[-1]))
        print("%s: %s" % (record["NAME"], "reachable" if args.resource_command == "status"
                          else "job folders removed"))
    elif args.resource_command == "show":
        record = resources.get(args.name)
        print(json.dumps({"name": record["NAME"], "owners": record["OWNERS"],
                          "conf": record["CONF"]}) if args.json else record["TEXT"])
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
                raise MigError("the passwords differ; nothing changed")
        if len(password) < 8:
            raise MigError("a password needs at least 8 characters; nothing changed")
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
    grid.start()

    def stop(_signum, _frame):
        threading.Thread(target=server.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    port = server.server_address[1]
    url = config.url.rsplit(":", 1)[0] + ":%d" % port
    print("MiG appliance %s serving %s" % (__version__, url), flush=True)
    print("state folder: %s" % config.state_dir)
    print("admin credentials: %s" % config.path("admin-credentials.txt"))
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
        return 2
    except CertError as exc:
        print("error: %s" % exc, file=sys.stderr)
        return 2
    except OSError as exc:
        print("error: %s" % exc, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

