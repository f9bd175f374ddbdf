"""Memos in Beam's graph construction, which cost a small job about as much as running it.

Measured with py-spy on a 20-record `mrt run` in a warm process (4.5 s a run): Beam's `get_dofn_specs` walks every
method of every DoFn (about 30 each, most inherited from DoFn itself) through `inspect.signature`, 20,000 calls a
run, repeated when the graph is checked, turned into protos and run; and `PipelineOptions.view_as` builds a fresh
options object each call, re-parsing every registered option with argparse, about 700 times a run. Upstream
memoised both in apache/beam#9925, closed unmerged; the memos here are the same idea, kept to what cannot change:
- a plain function's signature, and a bound method's (which depends on its function alone, not on the instance),
  weakly keyed, so that the lambdas of finished pipelines go;
- a DoFn's state and timer specs, per DoFn object (they come from its methods' default arguments, fixed once it
  is made), asked for again in each stage that builds, checks, translates or runs the DoFn;
- one view per options object and view class: Beam's views share the one options dict already (a value set
  through any view is seen by all), so handing back the same view changes nothing a caller can see.
"""

from __future__ import annotations

import types
import weakref

from apache_beam.options import pipeline_options
from apache_beam.transforms import core, ptransform, userstate, util
from apache_beam.typehints import decorators

_beams_get_signature = decorators.get_signature
_beams_view_as = pipeline_options.PipelineOptions.view_as
_beams_get_dofn_specs = userstate.get_dofn_specs

_function_signatures: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_bound_method_signatures: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_views: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_dofn_specs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def remembered_signature(func):
    if type(func) is types.FunctionType:
        memo, key = _function_signatures, func
    elif type(func) is types.MethodType and type(func.__func__) is types.FunctionType:
        memo, key = _bound_method_signatures, func.__func__
    else:  # builtins, classes, partials, callable objects: rare in a graph, and their signature may hang on state
        return _beams_get_signature(func)
    signature = memo.get(key)
    if signature is None:
        signature = memo[key] = _beams_get_signature(func)
    return signature


def remembered_dofn_specs(dofn) -> tuple[set, set]:
    try:
        specs = _dofn_specs.get(dofn)
    except TypeError:  # a DoFn that defines equality without a hash
        return _beams_get_dofn_specs(dofn)
    if specs is None:
        state, timers = _beams_get_dofn_specs(dofn)
        specs = _dofn_specs[dofn] = (frozenset(state), frozenset(timers))
    return set(specs[0]), set(specs[1])  # Beam's callers get sets of their own, as before


def remembered_view(options, cls):
    views = _views.setdefault(options, {})
    view = views.get(cls)
    if view is None or view._all_options is not options._all_options:
        view = views[cls] = _beams_view_as(options, cls)
    return view


def install() -> None:
    """Idempotent: every module that bound Beam's `get_signature` by name gets the memoised one."""
    for module in (decorators, core, ptransform, util):
        module.get_signature = remembered_signature
    userstate.get_dofn_specs = remembered_dofn_specs  # the one name every caller but the legacy DirectRunner uses
    pipeline_options.PipelineOptions.view_as = remembered_view
