/**
 * Launch files and packaging, read without ROS: the Python launch file through Python's ast (never
 * executed), the XML twin and the package.xml files through an XML parser
 * (inspect_ros_files.py), and the CMake files as text. The parameters the launch files set must
 * be parameters the node declares, and the params file must exist where the launch file looks.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { parameterDescriptors } from '../../src/config/schema.js';
import { ROS2_TRANSPORT_PARAMETERS } from '../../src/ros2/parameters.js';

const root = new URL('../../', import.meta.url).pathname;

interface Call {
  call: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
}

interface Inspected {
  py: {
    functions: string[];
    imports: string[];
    arguments: Record<string, { default_value: unknown; description: string }>;
    default_params: Call;
    nodes: Record<string, unknown>[];
  };
  xml: {
    tag: string;
    arguments: Record<string, { default: string; description: string }>;
    nodes: (Record<string, string> & { params: Record<string, string>[] })[];
  };
  bitmar_node: { format: string; name: string; build_type: string; depends: string[]; groups: string[] };
  bitmar_msgs: { format: string; name: string; build_type: string; depends: string[]; groups: string[] };
}

describe('launch files and ament packages', function () {
  this.timeout(20_000);
  let ros: Inspected;
  const declared = new Set([...parameterDescriptors(), ...ROS2_TRANSPORT_PARAMETERS].map((d) => d.name));

  before(() => {
    ros = JSON.parse(execFileSync('python3', [new URL('./inspect_ros_files.py', import.meta.url).pathname, root], { encoding: 'utf8' })) as Inspected;
  });

  it('bitmar.launch.py declares image_topic, model, mqtt_broker and params_file', () => {
    assert.deepEqual(ros.py.functions, ['generate_launch_description']);
    for (const arg of ['image_topic', 'model', 'mqtt_broker', 'params_file']) {
      assert.ok(ros.py.arguments[arg], `argument ${arg}`);
      assert.ok(ros.py.arguments[arg]!.description.length > 10, `${arg} is described`);
    }
    assert.equal(ros.py.arguments.image_topic!.default_value, '/image_raw');
    assert.deepEqual(ros.py.default_params.args[0], [{ call: 'FindPackageShare', args: ['bitmar_node'], kwargs: {} }, 'config', 'bitmar.ros2.yaml']);
    assert.ok(existsSync(`${root}config/bitmar.ros2.yaml`));
  });

  it('bitmar.launch.py starts bitmar_node with the params file, then the arguments as declared parameters', () => {
    assert.equal(ros.py.nodes.length, 1);
    const node = ros.py.nodes[0]!;
    assert.equal(node.package, 'bitmar_node');
    assert.equal(node.executable, 'bitmar_node');
    const [file, overrides] = node.parameters as [Call, { dict: [string, Call][] }];
    assert.deepEqual(file, { call: 'LaunchConfiguration', args: ['params_file'], kwargs: {} });
    const byName = Object.fromEntries(overrides.dict.map(([k, v]) => [k, v]));
    assert.deepEqual(Object.keys(byName).sort(), ['model.path', 'mqtt.url', 'ros2.imageTopic']);
    for (const [name, value] of Object.entries(byName)) {
      assert.ok(declared.has(name), `${name} is a declared parameter`);
      assert.equal(value.call, 'ParameterValue');
      assert.deepEqual(value.kwargs, { value_type: { name: 'str' } }, `${name} stays a string`);
    }
    assert.deepEqual(
      Object.fromEntries(Object.entries(byName).map(([k, v]) => [k, (v.args[0] as Call).args[0]])),
      { 'ros2.imageTopic': 'image_topic', 'model.path': 'model', 'mqtt.url': 'mqtt_broker' },
    );
  });

  it('bitmar.launch.xml is the same launch in XML', () => {
    assert.equal(ros.xml.tag, 'launch');
    assert.deepEqual(Object.keys(ros.xml.arguments).sort(), Object.keys(ros.py.arguments).sort());
    for (const [name, arg] of Object.entries(ros.py.arguments)) {
      if (typeof arg.default_value === 'string') assert.equal(ros.xml.arguments[name]!.default, arg.default_value, name);
    }
    assert.equal(ros.xml.arguments.params_file!.default, '$(find-pkg-share bitmar_node)/config/bitmar.ros2.yaml');
    const [node] = ros.xml.nodes;
    assert.deepEqual([node!.pkg, node!.exec], ['bitmar_node', 'bitmar_node']);
    assert.deepEqual(node!.params[0], { from: '$(var params_file)' });
    assert.deepEqual(
      node!.params.slice(1).map((p) => [p.name, p.value]),
      [
        ['ros2.imageTopic', '$(var image_topic)'],
        ['model.path', '$(var model)'],
        ['mqtt.url', '$(var mqtt_broker)'],
      ],
    );
  });

  it('msg/ is the interface package bitmar_msgs, generating every interface file it holds', () => {
    const m = ros.bitmar_msgs;
    assert.deepEqual([m.format, m.name, m.build_type], ['3', 'bitmar_msgs', 'ament_cmake']);
    assert.deepEqual(m.groups, ['rosidl_interface_packages']);
    for (const dep of ['buildtool_depend:rosidl_default_generators', 'exec_depend:rosidl_default_runtime', 'depend:std_msgs', 'depend:builtin_interfaces', 'depend:action_msgs']) {
      assert.ok(m.depends.includes(dep), dep);
    }
    const cmake = readFileSync(`${root}msg/CMakeLists.txt`, 'utf8');
    assert.match(cmake, /project\(bitmar_msgs\)/);
    const listed = [...cmake.matchAll(/"((?:msg|srv|action)\/\w+\.(?:msg|srv|action))"/g)].map((x) => x[1]).sort();
    const present = ['msg', 'srv', 'action'].flatMap((d) => readdirSync(`${root}msg/${d}`).map((f) => `${d}/${f}`)).sort();
    assert.deepEqual(listed, present);
    assert.match(cmake, /DEPENDENCIES builtin_interfaces std_msgs action_msgs/);
  });

  it('the repo root is the ament package bitmar_node with a bitmar_node executable', () => {
    const p = ros.bitmar_node;
    assert.deepEqual([p.format, p.name, p.build_type], ['3', 'bitmar_node', 'ament_cmake']);
    assert.ok(p.depends.includes('exec_depend:bitmar_msgs'));
    assert.equal(p.name.replace('_', '-'), JSON.parse(readFileSync(`${root}package.json`, 'utf8')).name, 'same project as package.json');
    const cmake = readFileSync(`${root}CMakeLists.txt`, 'utf8');
    assert.match(cmake, /project\(bitmar_node NONE\)/);
    assert.match(cmake, /install\(PROGRAMS "\$\{CMAKE_CURRENT_BINARY_DIR\}\/bitmar_node" DESTINATION "lib\/\$\{PROJECT_NAME\}"\)/);
    assert.match(cmake, /install\(DIRECTORY "\$\{APP_SRC\}\/launch" "\$\{APP_SRC\}\/config" DESTINATION "share\/\$\{PROJECT_NAME\}"\)/);
    assert.match(cmake, /"\$\{APP_SRC\}\/dist" "\$\{APP_SRC\}\/bin" "\$\{APP_SRC\}\/msg"/);
    assert.match(cmake, /run --source ros2 --ros2 \\"\$@\\"/, 'the executable passes the ROS arguments on');
  });
});
