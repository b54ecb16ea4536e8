"""Start bitmar_node: captions a camera topic, publishes on ~/caption, serves memory and describe-now.

    ros2 launch bitmar_node bitmar.launch.py image_topic:=/camera/image_raw
    ros2 launch bitmar_node bitmar.launch.py model:=/data/bitmar.gguf mqtt_broker:=mqtt://10.0.0.2:1883

The parameters come from params_file (default: config/bitmar.ros2.yaml of the package, `/**:
ros__parameters:`); image_topic, model and mqtt_broker override the matching parameters.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    default_params = PathJoinSubstitution([FindPackageShare('bitmar_node'), 'config', 'bitmar.ros2.yaml'])
    arguments = [
        DeclareLaunchArgument('image_topic', default_value='/image_raw',
                              description='sensor_msgs/Image topic to caption'),
        DeclareLaunchArgument('model', default_value='',
                              description='path of a GGUF model; empty = the bundled default model'),
        DeclareLaunchArgument('mqtt_broker', default_value='',
                              description='MQTT broker URL, e.g. mqtt://host:1883; empty = start the embedded broker'),
        DeclareLaunchArgument('params_file', default_value=default_params,
                              description='ROS 2 parameters file (/**: ros__parameters:)'),
        DeclareLaunchArgument('node_name', default_value='bitmar_node',
                              description='name of the node'),
        DeclareLaunchArgument('namespace', default_value='',
                              description='namespace of the node'),
    ]
    node = Node(
        package='bitmar_node',
        executable='bitmar_node',
        name=LaunchConfiguration('node_name'),
        namespace=LaunchConfiguration('namespace'),
        output='screen',
        emulate_tty=True,
        parameters=[
            LaunchConfiguration('params_file'),
            {
                # value_type=str: keep empty and numeric-looking strings as strings
                'ros2.imageTopic': ParameterValue(LaunchConfiguration('image_topic'), value_type=str),
                'model.path': ParameterValue(LaunchConfiguration('model'), value_type=str),
                'mqtt.url': ParameterValue(LaunchConfiguration('mqtt_broker'), value_type=str),
            },
        ],
    )
    return LaunchDescription(arguments + [node])
