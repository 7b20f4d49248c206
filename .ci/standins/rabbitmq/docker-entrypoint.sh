#!/bin/sh
set -eu
if [ "$1" = rabbitmq-server ] && [ "$(id -u)" = 0 ]; then
    chown -R rabbitmq:rabbitmq /var/lib/rabbitmq
    exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups "$0" "$@"
fi
if [ "$1" = rabbitmq-server ]; then
    # Debian's /usr/sbin/rabbitmq-server wrapper sends the output to files
    # in /var/log/rabbitmq; the script it calls runs in the foreground.
    shift
    exec /usr/lib/rabbitmq/bin/rabbitmq-server "$@"
fi
exec "$@"
