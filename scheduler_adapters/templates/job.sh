#!/bin/bash
{directives}
{exports}
cd {workdir} || exit 97
exec {command}
