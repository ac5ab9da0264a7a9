#!/bin/sh
set -e
mkdir -p /usr/local/share/fid
echo "greeting=$GREETING enabled=$ENABLED colour=$COLOUR remote=$_REMOTE_USER container=$_CONTAINER_USER home=$_REMOTE_USER_HOME" > /usr/local/share/fid/feat
