/* lakeforge
checks:
  - {type: unique, column: employee_number}
  - {type: relationships, column: office_code, to: silver.offices}
*/
select
    employeenumber::integer             as employee_number,
    trim(firstname) || ' ' || trim(lastname) as employee_name,
    lower(trim(email))                  as email,
    trim(officecode)                    as office_code,
    reportsto::integer                  as reports_to,
    trim(jobtitle)                      as job_title
from bronze.crm_employees
qualify row_number() over (partition by employeenumber order by _lf_extracted_at desc) = 1
