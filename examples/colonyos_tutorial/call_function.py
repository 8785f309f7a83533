"""Call a function the tutorial way: funcname "execute", kwargs {function, arg}, then wait."""

import sys

from pycolonies import colonies_client, func_spec

colonies, colonyname, colony_prvkey, executorname, prvkey = colonies_client()

spec = func_spec(func="execute", args=[], kwargs={"function": "convert", "arg": sys.argv[1] if len(sys.argv) > 1 else "21"},
                 colonyname=colonyname, executortype="faas-executor", maxexectime=30, maxretries=1)
process = colonies.submit_func_spec(spec, prvkey)
process = colonies.wait(process, 30, prvkey)
print(process.output[0] if process.output else process.errors)
