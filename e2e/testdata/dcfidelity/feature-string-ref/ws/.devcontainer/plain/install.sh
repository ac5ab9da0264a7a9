#!/bin/sh
mkdir -p /usr/local/share/fid
echo "mode=$MODE" > /usr/local/share/fid/plain
