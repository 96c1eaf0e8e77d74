{#- The lineage columns every master-data base model ends with: where the version came from, the
    record as it arrived (for rejects and audits), and a hash of what makes it a distinct version. -#}
{% macro master_lineage(fields) -%}
        _batch_id as batch_id,
        _loaded_at as loaded_at,
        _source as source_name,
        {{ bankpipe.json_object_text(fields) }} as raw_record,
        {{ bankpipe.record_hash(fields + ['_is_deleted', '_updated_at']) }} as record_hash
{%- endmacro %}
