#!/usr/bin/env python3
# Turns conf/shaping.yaml into a C file (shp_builtin_yaml[], _len) so the
# shipped rules are part of the binary: ringmta needs no data files to run.
import sys

data = open(sys.argv[1], 'rb').read()
with open(sys.argv[2], 'w') as out:
    out.write('/* Generated from conf/shaping.yaml by core/shaping/shp_embed.py. */\n')
    out.write('#include <stddef.h>\n\n')
    out.write('extern const char shp_builtin_yaml[];\nextern const size_t shp_builtin_yaml_len;\n\n')
    out.write('const char shp_builtin_yaml[] = {\n')
    for i in range(0, len(data), 16):
        out.write('\t' + ', '.join('0x%02x' % b for b in data[i:i + 16]) + ',\n')
    out.write('\t0x00\n};\n')
    out.write('const size_t shp_builtin_yaml_len = %d;\n' % len(data))
