#!/bin/sh
mkdir -p /usr/local/share/fid
echo zeta >> /usr/local/share/fid/order
