"""Reads the launch files and package manifests the way ROS tools would, without ROS installed:
the Python launch file with ast (never executed), the XML launch file and package.xml files with
xml.etree. Prints one JSON object for test/ros2/launch.test.ts."""
import ast
import json
import sys
import xml.etree.ElementTree as ET

root = sys.argv[1]


def literal(node):
    """A JSON-able description of an expression: constants as values, calls as {call, args, kwargs}."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [literal(e) for e in node.elts]
    if isinstance(node, ast.Dict):
        return {'dict': [[literal(k), literal(v)] for k, v in zip(node.keys, node.values)]}
    if isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
        return {'call': name, 'args': [literal(a) for a in node.args], 'kwargs': {k.arg: literal(k.value) for k in node.keywords}}
    if isinstance(node, ast.Name):
        return {'name': node.id}
    if isinstance(node, ast.BinOp):
        return {'binop': [literal(node.left), literal(node.right)]}
    return {'expr': ast.unparse(node)}


tree = ast.parse(open(f'{root}/launch/bitmar.launch.py').read())
functions = [f.name for f in tree.body if isinstance(f, ast.FunctionDef)]
imports = sorted({f'{n.module}.{a.name}' for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names})
assigned = {}
for node in ast.walk(tree):
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        assigned[node.targets[0].id] = node.value
calls = [literal(n) for n in ast.walk(tree) if isinstance(n, ast.Call)]
declared = [c for c in calls if c['call'] == 'DeclareLaunchArgument']
nodes = [c for c in calls if c['call'] == 'Node']
py = {
    'functions': functions,
    'imports': imports,
    'arguments': {c['args'][0]: c['kwargs'] for c in declared},
    'default_params': literal(assigned['default_params']) if 'default_params' in assigned else None,
    'nodes': [n['kwargs'] for n in nodes],
}

x = ET.parse(f'{root}/launch/bitmar.launch.xml').getroot()
xml = {
    'tag': x.tag,
    'arguments': {a.get('name'): {'default': a.get('default'), 'description': a.get('description')} for a in x.findall('arg')},
    'nodes': [
        {**n.attrib, 'params': [p.attrib for p in n.findall('param')]} for n in x.findall('node')
    ],
}


def manifest(path):
    p = ET.parse(path).getroot()
    return {
        'format': p.get('format'),
        'name': p.findtext('name'),
        'build_type': p.findtext('export/build_type'),
        'depends': sorted({e.tag + ':' + e.text for e in p if e.tag.endswith('depend')}),
        'groups': [e.text for e in p.findall('member_of_group')],
    }


print(json.dumps({
    'py': py,
    'xml': xml,
    'bitmar_node': manifest(f'{root}/package.xml'),
    'bitmar_msgs': manifest(f'{root}/msg/package.xml'),
}))
