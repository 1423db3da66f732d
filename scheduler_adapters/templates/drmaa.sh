#!/bin/bash
# Submitted through DRMAA: Grid Engine does not read directives from this file,
# the options below went in as the job template's native specification.
{directives}
{exports}
cd {workdir} || exit 97
exec {command}
