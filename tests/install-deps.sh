#!/usr/bin/env bash
# Installs what the test suite needs: system tools (through apt-get when we
# are root and they are missing) and a venv with pytest.
set -euo pipefail
PYTHON=${1:-python3}
VENV=${2:-.venv}
need=()
for tool in curl:curl openssl:openssl bash:bash setpriv:util-linux \
            /usr/bin/chromium:chromium /usr/bin/chromedriver:chromium-driver \
            /usr/sbin/sshd:openssh-server ssh:openssh-client \
            /usr/sbin/slurmctld:slurm-wlm /usr/sbin/smtpd:opensmtpd; do
  cmd=${tool%%:*}; pkg=${tool##*:}
  command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
  else
    echo "missing system packages: ${need[*]} (install them, e.g. apt-get install ${need[*]});" \
         "tests that need them will say so" >&2
  fi
fi
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r tests/requirements.txt
